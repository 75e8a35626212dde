//! Functions tgpulse adds to every DataFusion session.

use std::sync::Arc;

use arrow::array::{Array, AsArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use chrono::DateTime;
use chrono_tz::Tz;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};

/// The local wall time of an instant in `tz`, as microseconds of a zone-less timestamp;
/// `None` outside chrono's range.
pub(crate) fn local_micros(tz: Tz, us: i64) -> Option<i64> {
    let t = DateTime::from_timestamp_micros(us)?;
    Some(
        t.with_timezone(&tz)
            .naive_local()
            .and_utc()
            .timestamp_micros(),
    )
}

/// `to_local(instant TIMESTAMP(us, UTC)) -> TIMESTAMP(us)`: the wall time of the instant in
/// the reporting time zone `tz`, with daylight saving applied instant by instant, so that
/// `date_part('hour', to_local(t))`, `date_part('dow', …)` and `date_trunc('day', …)` give
/// local hours, weekdays and days. NULL stays NULL.
pub(crate) fn to_local(tz: Tz) -> ScalarUDF {
    let fun = Arc::new(
        move |args: &[ColumnarValue]| -> datafusion::error::Result<ColumnarValue> {
            match &args[0] {
                ColumnarValue::Scalar(v) => {
                    let us = match v {
                        ScalarValue::TimestampMicrosecond(us, _) => {
                            us.and_then(|x| local_micros(tz, x))
                        }
                        ScalarValue::Null => None,
                        other => {
                            return Err(datafusion::error::DataFusionError::Plan(format!(
                                "to_local takes a timestamp, not {}",
                                other.data_type()
                            )));
                        }
                    };
                    Ok(ColumnarValue::Scalar(ScalarValue::TimestampMicrosecond(
                        us, None,
                    )))
                }
                ColumnarValue::Array(a) => {
                    let a = a
                        .as_primitive_opt::<TimestampMicrosecondType>()
                        .ok_or_else(|| {
                            datafusion::error::DataFusionError::Plan(format!(
                                "to_local takes a timestamp, not {}",
                                a.data_type()
                            ))
                        })?;
                    let out: TimestampMicrosecondArray = a.unary_opt(|us| local_micros(tz, us));
                    debug_assert_eq!(out.len(), a.len());
                    Ok(ColumnarValue::Array(Arc::new(out)))
                }
            }
        },
    );
    create_udf(
        "to_local",
        vec![DataType::Timestamp(
            TimeUnit::Microsecond,
            Some("UTC".into()),
        )],
        DataType::Timestamp(TimeUnit::Microsecond, None),
        Volatility::Immutable,
        fun,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_wall_time_follows_daylight_saving() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let us = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_micros()
        };
        // 2021-03-28: clocks go from 02:00 CET to 03:00 CEST.
        let before = local_micros(tz, us("2021-03-28T00:30:00Z")).unwrap();
        let after = local_micros(tz, us("2021-03-28T01:30:00Z")).unwrap();
        assert_eq!(before, us("2021-03-28T01:30:00Z"));
        assert_eq!(after, us("2021-03-28T03:30:00Z"));
    }
}
