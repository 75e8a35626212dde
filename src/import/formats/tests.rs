//! Unit tests of the input formats, each mapping a small CSV file as the import does.

use std::io::Write;

use super::*;
use crate::import::ImportLimits;
use crate::import::reader::Progress;
use crate::ingest::{Mention, MentionKind};

/// Records and rejects of a finished mapping: what [`Mapper::finish`] sends.
#[derive(Default)]
struct Collected {
    records: Vec<Record>,
    rejects: Vec<Reject>,
}

impl Sink for Collected {
    fn record(&mut self, r: Record) {
        self.records.push(r);
    }
    fn reject(&mut self, e: RowError) {
        self.rejects.push((e.column, e.reason));
    }
}

/// Maps the CSV text `csv` (header first) with the mapper `detect` finds for it, as the
/// import does: a rejected row leaves no records. Returns the records of every row and of
/// `finish`, and the rejects (column, reason).
fn map_csv<M: Mapper>(csv: &str, detect: fn(&Input) -> Option<Result<M, String>>) -> Collected {
    let mut file = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
    file.write_all(csv.as_bytes()).unwrap();
    file.flush().unwrap();
    let input = Input::open(file.path(), ImportLimits::default()).unwrap();
    let mut mapper = detect(&input).expect("layout recognised").unwrap();
    let mut got = Collected::default();
    input
        .scan(&mapper.needed(), &Progress::default(), |row, pos| {
            let row = row.expect("no over-long record");
            let before = got.records.len();
            if let Err(e) = mapper.map(row, pos, &mut got.records) {
                got.records.truncate(before);
                got.rejects.push(e);
            }
            true
        })
        .unwrap();
    mapper.finish(&mut got).unwrap();
    got
}

fn mentions(records: &[Record]) -> Vec<&Mention> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Mention(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn posts(records: &[Record]) -> Vec<i64> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Post(p) => Some(p.post_id),
            _ => None,
        })
        .collect()
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
}

const POSTS_HEADER: &str = "channel_id,channel_name,msg_id,date,views,number_replies,\
    number_forwards,is_forward,forward_msg_from_peer_type,forward_msg_from_peer_id,\
    forward_msg_from_peer_name,forward_msg_date\n";

#[test]
fn a_forward_from_a_channel_gives_a_forward_mention_beside_its_post() {
    let csv = format!(
        "{POSTS_HEADER}\
         1530205157,speckzo,1132,2023-03-14 16:19:26+00:00,1158,0,1,1,PeerChannel,1505034921.0,NightclubRonin,2023-03-14 16:17:25\n\
         1530205157,speckzo,1133,2023-03-14 17:00:00+00:00,90,0,0,true,channel,-1001363089865,,2023-03-12 07:22:56\n"
    );
    let got = map_csv(&csv, Posts::detect);
    assert!(got.rejects.is_empty(), "{:?}", got.rejects);
    assert_eq!(posts(&got.records), vec![1132, 1133], "the posts are kept");
    assert_eq!(
        mentions(&got.records),
        vec![
            &Mention {
                channel_id: ChannelId::new(1_530_205_157).unwrap(),
                post_id: 1132,
                published_at: at("2023-03-14T16:19:26Z"),
                kind: MentionKind::Forward,
                source_channel_id: Some(ChannelId::new(1_505_034_921).unwrap()),
                source_post_id: None,
                source_name: Some("nightclubronin".into()),
            },
            &Mention {
                channel_id: ChannelId::new(1_530_205_157).unwrap(),
                post_id: 1133,
                published_at: at("2023-03-14T17:00:00Z"),
                kind: MentionKind::Forward,
                source_channel_id: Some(ChannelId::new(1_363_089_865).unwrap()),
                source_post_id: None,
                source_name: None,
            },
        ]
    );
}

#[test]
fn forwards_from_users_hidden_senders_and_rows_not_forwarded_give_no_mention() {
    let csv = format!(
        "{POSTS_HEADER}\
         1530205157,speckzo,1,2023-03-14 16:19:26+00:00,10,0,0,1,PeerUser,972001107.0,,2023-03-14 16:17:25\n\
         1530205157,speckzo,2,2023-03-14 16:20:00+00:00,10,0,0,1,,,,2023-03-14 16:17:25\n\
         1530205157,speckzo,3,2023-03-14 16:21:00+00:00,10,0,0,0,PeerChannel,1505034921.0,nightclubronin,2023-03-14 16:17:25\n\
         1530205157,speckzo,4,2023-03-14 16:22:00+00:00,10,0,0,0,,,,\n"
    );
    let got = map_csv(&csv, Posts::detect);
    assert!(got.rejects.is_empty(), "{:?}", got.rejects);
    assert_eq!(posts(&got.records), vec![1, 2, 3, 4]);
    assert_eq!(mentions(&got.records), Vec::<&Mention>::new());
}

#[test]
fn a_malformed_forward_cell_rejects_the_row_with_its_column() {
    let csv = format!(
        "{POSTS_HEADER}\
         1530205157,speckzo,1,2023-03-14 16:19:26+00:00,10,0,0,1,PeerChannel,1505034921.5,x_chan,\n\
         1530205157,speckzo,2,2023-03-14 16:20:00+00:00,10,0,0,1,PeerBot,1505034921.0,x_chan,\n\
         1530205157,speckzo,3,2023-03-14 16:21:00+00:00,10,0,0,maybe,PeerChannel,1505034921.0,x_chan,\n\
         1530205157,speckzo,4,2023-03-14 16:22:00+00:00,10,0,0,1,PeerUser,not-an-id,,\n"
    );
    let got = map_csv(&csv, Posts::detect);
    let columns: Vec<&str> = got.rejects.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(
        columns,
        vec![
            "forward_msg_from_peer_id",
            "forward_msg_from_peer_type",
            "is_forward"
        ],
        "{:?}",
        got.rejects
    );
    assert_eq!(
        posts(&got.records),
        vec![4],
        "a rejected row leaves no post; a user's peer id is not read"
    );
}

#[test]
fn a_posts_file_without_forward_columns_gives_posts_only() {
    let csv = "channel_id,channel_name,msg_id,date,views\n\
               1530205157,speckzo,1132,2023-03-14 16:19:26+00:00,1158\n";
    let got = map_csv(csv, Posts::detect);
    assert!(got.rejects.is_empty(), "{:?}", got.rejects);
    assert_eq!(posts(&got.records), vec![1132]);
    assert_eq!(mentions(&got.records), Vec::<&Mention>::new());
}

#[test]
fn the_animals_post_count_is_read_into_the_member_sample() {
    let csv = "handle,channel_id,observed_at,subscriber_count,post_count,title\n\
               birblife,1363895234,2021-03-17 01:17:20.354178+00:00,4180,,Birb Life\n\
               birblife,1363895234,2022-06-17 01:17:20+00:00,5000,1517,Birb Life\n\
               birblife,1363895234,2022-06-18 01:17:20+00:00,5001,many,Birb Life\n\
               birblife,,2022-06-19 01:17:20+00:00,5002,1520.0,Birb Life\n";
    let got = map_csv(csv, Animals::detect);
    assert_eq!(got.rejects.len(), 1, "{:?}", got.rejects);
    assert_eq!(got.rejects[0].0, "post_count");
    let samples: Vec<(i64, i64, Option<i64>)> = got
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Member(m) => Some((m.channel_id.get(), m.members, m.post_count)),
            _ => None,
        })
        .collect();
    assert_eq!(
        samples,
        vec![
            (1363895234, 4180, None),
            (1363895234, 5000, Some(1517)),
            // Resolved through its handle at the end, the post count kept.
            (1363895234, 5002, Some(1520)),
        ]
    );
}
