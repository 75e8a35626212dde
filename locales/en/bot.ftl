# The bot's messages in English. Telegram HTML: only <b>, <i>, <pre>, <code>; placeables that
# hold user or channel text arrive escaped. Integers are grouped by the code's formatter.

## Counts

n-channels = { $count ->
    [one] { $count } channel
   *[other] { $count } channels
}
n-days = { $count ->
    [one] { $count } day
   *[other] { $count } days
}
age-seconds = { $n } s ago
age-minutes = { $n } min ago
age-hours = { $n } h ago
age-days = { $n } d ago
never = never
not-available = n/a

## Access

refusal = Sorry, this is a private bot.
internal-error = Sorry, that request failed on our side. It has been logged; please try again or ask an admin.
too-many-requests = Too many requests; please wait { $seconds } s. (Each user may send a few commands per minute.)
admins-only = That command is for admins; you have the read-only viewer role.
viewer-granted = { $user } is now a viewer (read-only).
viewer-already = { $user } was already a viewer.
viewer-revoked = { $user } is no longer a viewer.
viewer-was-not = { $user } was not a viewer.
viewers-title = <b>Viewers</b>: { $count }
viewers-line = { $user } (granted by { $by }, { $date })

## Arguments

usage = Usage: { $usage }
usage-stats = /stats @channel [days], e.g. /stats @durov 90
usage-compare = /compare @a @b .. [days], 2 to 10 channels, e.g. /compare @durov @telegram 30
usage-export = /export @channel [parquet|csv] [days] [members|views|posts|samples], e.g. /export @durov csv 90
usage-add = /add @channel, e.g. /add @durov
usage-remove = /remove @channel, e.g. /remove @durov
usage-grant = /grant user_id, e.g. /grant 123456789 (the numeric Telegram user id)
arg-not-a-channel = “{ $word }” is not a channel. Write its @handle (4–32 letters, digits or _, starting with a letter) or its numeric id.
arg-not-a-handle = “{ $word }” is not a channel handle (4–32 letters, digits or _, starting with a letter).
arg-which-channel = Which channel?
arg-one-channel = One channel at a time, please.
arg-not-days = “{ $word }” is not a number of days; use a whole number from 1 to 3650.
arg-too-many = Too many arguments.
arg-compare-too-few = Compare needs at least 2 different channels.
arg-compare-too-many = At most { $most } channels at once ({ $given } given).
arg-unknown-word = I don't understand “{ $word }”.
arg-not-a-user = “{ $word }” is not a user id.
arg-none = { "" }

## /stats, /compare, /list, /health

window = { $from } … { $to } ({ $days }, { $zone })
row-members = members
row-delta = delta
row-baseline = baseline
row-mean-daily-growth = mean daily growth
row-best-day = best day
row-worst-day = worst day
row-posts = posts
row-avg-post-reach = avg post reach
row-err = ERR
row-index-at-end = index at end
row-days-with-members = days with members
row-last-sample = last sample
value-on-day = { $value } on { $day }
per-day = { $value } /day
n-of-m = { $n } of { $m }
compare-title = Comparison
compare-index-note = index: members ÷ members at the window start × 100
col-channel = channel
col-members = members
col-change = change
col-growth = growth
col-err = ERR
col-index = index
col-day = day
col-sampled = sampled
list-empty = No channels are watched yet. Add one with /add @channel.
list-title = <b>Watched channels</b>: { $count } (page { $page } of { $pages })
storage-timescale = TimescaleDB (hypertables, continuous aggregates)
storage-plain = plain PostgreSQL
health =
    <b>Health</b>
    storage: { $storage }
    watched channels: { $watched }
    samples in the last hour: { $last_hour }
    samples in the last day: { $last_day }
health-no-source = No source has run yet (start collectors with tgpulse serve).
health-source = <b>{ $source }</b>: last success { $last } (lag { $lag }), jobs ok { $ok }, failed { $failed }
health-last-error = { "  " }last error { $age }: { $error }
ago-suffix = ago

## /help and the command menu

help-intro = tgpulse: channel statistics from your own database.
help-viewer = You have the read-only viewer role: /add, /remove, /grant and /revoke are for admins.
cmd-start = what this bot does
cmd-help = the commands
cmd-add = @channel: start collecting a channel (admins)
cmd-remove = @channel: stop collecting a channel, after confirmation (admins)
cmd-list = the watched channels: members, the day's change, last sample
cmd-stats = @channel [days]: summary and chart (default 30 days)
cmd-compare = @a @b .. [days]: 2 to 10 channels side by side, indexed growth
cmd-export = @channel [parquet|csv] [days] [members|views|posts|samples]: a file
cmd-health = storage, sources' last success and lag, recent samples
cmd-grant = user_id: give a user the read-only viewer role (admins)
cmd-revoke = user_id: take the viewer role back (admins)
cmd-viewers = who has the viewer role (admins)
cmd-alerts = open alerts; on|off for yourself; set, mute, on|off per channel (admins)
cmd-reports = on|off: the weekly and monthly reports
cmd-lang = en|ru: the bot's language (auto: follow Telegram's)
unknown-command = I don't know { $command }.
unreadable-command = I couldn't read that command.

## /lang

lang-current = I answer you in English. /lang ru — по-русски; /lang auto — the language of your Telegram.
lang-usage = Usage: /lang en, /lang ru, or /lang auto (the language of your Telegram).
lang-set = From now on I answer you in English.
lang-auto = I follow your Telegram's language again.
channel-unknown = unknown channel { $channel }: it was never added or imported (see `tgpulse import` or /add)
channel-unknown-hint = Check the spelling, or start collecting it with /add { $handle }.
channel-ambiguous = { $handle } is ambiguous: it has pointed to channels { $ids }; use the numeric id
no-samples-yet = { $channel } has no samples yet; collectors fill it within the hour.
query-timeout = That query ran past the database's time limit and was stopped. Try a shorter window, or again in a minute.
button-compare-with = Compare with…
button-export = Export
button-expired = This button has expired; send the command again.
button-failed = Something went wrong; please try again in a minute.
compare-with-ask = Compare <b>{ $channel }</b> with which channels? Send 1 to 9 @handles, e.g. <code>@durov @telegram</code>.
send-a-command = Send a command, e.g. /stats @channel 30. /help lists them all.

## /add, /remove

add-no-resolver = No source can resolve handles: configure [{ $via }] in the sources file.
add-not-found = { $via } can't find { $handle }. Check the spelling; a private channel needs the bot (or account) as a member.
add-failed = Could not resolve { $handle } through { $via } right now: { $error }. Try again later.
add-done = Now collecting <b>{ $handle }</b> (id { $id }){ $title }. Running collectors pick it up within 5 minutes; members are read hourly.
add-already = <b>{ $handle }</b> (id { $id }){ $title } is already collected.
remove-not-watched = { $channel } is not collected; nothing to remove.
remove-ask = Stop collecting <b>{ $channel }</b>? Its samples stay in the database.
remove-stopped-short = Stopped.
remove-stopped = Stopped collecting <b>{ $channel }</b>; running collectors drop it within 5 minutes. Its samples stay in the database.
remove-was-not = <b>{ $channel }</b> was no longer collected.
remove-admins-only = Only admins may remove channels.
cancelled-short = Cancelled.
cancelled = Cancelled; nothing changed.
button-remove-yes = Yes, stop collecting
button-cancel = Cancel
button-previous = ‹ previous
button-next = next ›

## /export

export-pressed = Exporting…
export-still-running = Your previous export is still running; its status message says when it is done. Send /export again after that.
export-scope-days = { $days ->
    [one] the last day with data
   *[other] the last { $days } days with data
}
export-scope-all = all data
export-started = Exporting { $relation } of <b>{ $channel }</b> ({ $scope }) as { $format }…
export-shutdown = The bot is shutting down, so this export stopped; nothing partial was sent as complete. Send /export again later.
export-failed = The export of { $relation } for { $channel } failed: { $error }. Nothing partial was sent as complete; try again, or use the CLI.
export-allowance-used = You have used your export allowance for today ({ $used } of { $quota } bytes); it renews at 00:00 UTC.
export-over-allowance = The export stopped after { $sent } file(s): the next one ({ $bytes } bytes) would pass your export allowance of { $quota } bytes for today; it renews at 00:00 UTC.
export-nothing = { $channel } has no rows in { $relation }; nothing to export.
export-done = Done: { $rows ->
    [one] { $rows } row
   *[other] { $rows } rows
} of { $relation } for <b>{ $channel }</b> in { $files ->
    [one] { $files } file
   *[other] { $files } files
}.
export-file-caption = { $rows ->
    [one] { $rows } row
   *[other] { $rows } rows
} of { $relation } for { $channel }
export-part-last = part { $part }, the last: { $rows ->
    [one] { $rows } row
   *[other] { $rows } rows
}
export-part = part { $part }: { $rows ->
    [one] { $rows } row
   *[other] { $rows } rows
}
export-in-parts = { $relation } of <b>{ $channel }</b> is more than Telegram's { $mb } MB upload limit, so it comes in several files, each complete on its own…
export-progress = Exporting { $relation } of <b>{ $channel }</b>: { $rows } rows read…

## /alerts and alert messages

usage-alerts =
    /alerts — open alerts and the last 10 resolved
    /alerts on | /alerts off — your own notifications
    /alerts set @channel members_change 15 — a channel's threshold (admins)
    /alerts mute @channel 7d — no notifications for a while (admins)
    /alerts off @channel no_posts | /alerts on @channel no_posts — a rule for a channel (admins)
alerts-unknown-rule = unknown rule `{ $word }`; expected members_change, views_drop, no_posts or unusual_change
alerts-stale-not-per-channel = source_stale is not set per channel.
alerts-not-a-number = “{ $word }” is not a number.
alerts-bad-threshold = That is no threshold for { $rule }: a positive number (views_drop: below 100).
alerts-bad-mute = Mute for 1d to { $most }d, e.g. 7d.
alerts-not-understood = I did not understand that.
alerts-admins-only = Only admins change alert rules. You can turn your own notifications on or off with /alerts on or /alerts off.
alerts-notify-on = You will be told of new alerts.
alerts-notify-off = You will no longer be told of new alerts (/alerts on to undo).
alerts-threshold-set = { $rule } for { $channel }: threshold { $threshold }.
alerts-rule-on = { $rule } is on for { $channel }.
alerts-rule-off = { $rule } is off for { $channel }.
alerts-muted = { $channel } is muted until { $until } UTC: its alerts are recorded, nobody is told.
alerts-mute-admins-only = Only admins mute channels.
unit-median-gap = { $value } × the median gap
unit-robust-z = { $value } robust z
unit-members-interval = { $value } × the members interval
alerts-none-open = <b>No open alerts.</b>
alerts-open-title = <b>Open alerts ({ $count })</b>
alerts-open-line = • { $channel } <b>{ $rule }</b> since { $day }: { $detail }
alerts-resolved-title = <b>Recently resolved</b>
alerts-list-footer = /alerts on|off — your notifications
alerts-digest-title = 🔔 <b>{ $count } new alerts</b>
alerts-digest-footer = /alerts lists the open ones.
alert =
    🔔 <b>{ $channel }</b>: { $rule } on { $day }
    { $detail }
    before { $before } · after { $after } · change { $change } · threshold { $threshold }
detail-members_change = members { $before } → { $after } ({ $change })
detail-unusual_change = daily change { $delta } against a typical { $typical } (robust z { $z })
detail-no_posts = no post for { $silent } h; it usually posts every { $gap } h (limit { $limit } h)
detail-views_drop = average 24 h reach { $reach } against { $before } in the weeks before ({ $change })
detail-source_stale = source { $source } has not succeeded for { $hours } h (limit { $limit } h: { $intervals } × its members interval)
button-mute-7 = Mute 7 days
button-stats = Stats
button-compare = Compare

## Reports

usage-reports =
    /reports on — the weekly (Monday) and monthly (1st) reports of every watched channel
    /reports off — no more reports
reports-on = You will get the weekly and monthly reports. /reports off to stop.
reports-off = No more reports. /reports on to start again.
report-chart-caption = Indexed growth of the 10 largest channels (100 = the period's start)
report-title-weekly = Weekly report, { $from } – { $to } ({ $zone })
report-title-monthly = Monthly report, { $from } – { $to } ({ $zone })
report-line = { $channel }: <b>{ $members }</b> ({ $delta }, { $growth }) · posts { $posts } · reach { $reach } · ERR { $err }
report-growers = Top growers
report-losers = Top losers
report-none = none
report-alerts = Alerts ({ $count })

## Charts

chart-members-title = { $channel } — members, { $from } – { $to } ({ $zone })
chart-members = members
chart-members-legend = members (last { $last })
chart-daily-delta = daily delta
chart-gain = gain
chart-loss = loss
chart-compare-title = Indexed growth (100 = window start), { $from } – { $to } ({ $zone })
chart-index = index
chart-compare-legend = { $channel }  { $index }  ({ $members } members)
chart-no-data = { $channel }  (no data)
chart-empty = No member data for { $channel } in the window; nothing to chart.
chart-failed = The chart could not be drawn: { $error }
health-reports-given-up = Reports given up in the last 7 days (sending failed for a day): { $count }. The service log says why.
