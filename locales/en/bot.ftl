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
usage-mentions = /mentions @channel [days], e.g. /mentions @durov 30
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
row-reach-at = reach at { $hours }h
row-err24 = ERR 24h (ours)
row-frequency = posting frequency
value-of-posts = { $value } ({ $posts ->
    [one] { $posts } post
   *[other] { $posts } posts
})
frequency-gap = median gap { $hours } h
frequency-from-counter = (from the post counter)
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
cmd-mentions = @channel [days]: who forwards and mentions the channel, and whom it does (default 30 days)
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
button-views = Views
button-best-time = Best time
button-top-posts = Top posts
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

## Post analytics (the buttons under /stats) and /mentions

posts-chart-empty = No post views for { $channel } in the window; nothing to chart.
views-title = <b>Views</b> by publication day, { $window }
views-row-days = days with posts
views-row-total = views
views-row-avg7 = 7-day average
views-row-change = change of average
views-note = A post's views are the most seen, counted on its publication day; the 7-day average counts days without posts as 0.
weekday = { $day ->
    [0] Monday
    [1] Tuesday
    [2] Wednesday
    [3] Thursday
    [4] Friday
    [5] Saturday
   *[6] Sunday
}
best-time-title = <b>Best time to post</b>, { $window }
best-time-top = The best weekday hours by the median reach of their posts:
best-time-slot = { $n }. { $weekday }, { $from }–{ $to }: median reach { $reach }, ×{ $index } the channel's typical post ({ $posts ->
    [one] { $posts } post
   *[other] { $posts } posts
})
best-time-none = No weekday hour has { $min } posts or more in this window yet.
best-time-basis-reach24 = Reach: each post's views 24 hours after publication.
best-time-basis-latest = Reach: each post's latest views (these posts were first read when over a day old, e.g. imported).
best-time-basis-mixed = Reach: views 24 hours after publication where known, else the latest views of posts first read when over a day old.
best-time-empty-cells = Hours with fewer than { $min ->
    [one] { $min } post
   *[other] { $min } posts
} are left empty. Weekdays and hours in { $zone }.
top-posts-title = <b>Top posts</b> of { $channel }
top-posts-count = { $count ->
    [one] { $count } post
   *[other] { $count } posts
} in the window
top-by-reach = <b>By reach</b> (the most views seen)
top-by-engagement = <b>By engagement</b> ((forwards + replies + reactions) ÷ views)
top-post-line = { $n }. { $date } · views { $views } · engagement { $engagement } · { $link }
top-post-no-link = post { $id }
top-none = none in the window
mentions-title = <b>Forwards and mentions</b>, { $window }
mentions-incoming = <b>Who forwards, mentions or links { $channel }</b> (incoming, top { $top })
mentions-outgoing = <b>Whom { $channel } forwards, mentions or links</b> (outgoing, top { $top })
mentions-peer = { $n }. { $peer } — { $posts ->
    [one] { $posts } post
   *[other] { $posts } posts
}: { $kinds }
mentions-forwards = { $count ->
    [one] { $count } forward
   *[other] { $count } forwards
}
mentions-mentions = { $count ->
    [one] { $count } mention
   *[other] { $count } mentions
}
mentions-links = { $count ->
    [one] { $count } link
   *[other] { $count } links
}
mentions-reach = reach { $reach }
mentions-none = none in this window
mentions-days = <b>Days with the most incoming posts</b>, with the members change on the next day. A correlation, not a cause: members move for other reasons too.
mentions-day = { $day }: { $posts ->
    [one] { $posts } post
   *[other] { $posts } posts
}, reach { $reach } → members the next day { $change }
mentions-empty-hint = tgpulse records forwards, mentions and links from the posts file, MTProto and TGStat; none were recorded for this channel in the window.

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
chart-views-title = { $channel } — views of posts, { $from } – { $to } ({ $zone })
chart-views = views
chart-views-bars = views of the day's posts
chart-views-avg = 7-day average
chart-views-avg-change = 7-day average ({ $change } over the window)
chart-heatmap-title = { $channel } — best time to post, { $from } – { $to } ({ $zone })
chart-heatmap-posts = { $posts ->
    [one] { $posts } post
   *[other] { $posts } posts
}
chart-heatmap-basis-reach24h = reach: views 24 h after publication
chart-heatmap-basis-latest = reach: latest views (posts first read after 24 h)
chart-heatmap-basis-mixed = reach: views at 24 h, or the latest views of posts first read later
chart-heatmap-median = 1.0 = typical (median) reach, { $median ->
    [one] { $median } view
   *[other] { $median } views
}
chart-heatmap-sparse = cells with fewer than { $min ->
    [one] { $min } post
   *[other] { $min } posts
} are empty
chart-heatmap-hour = hour of the day
chart-heatmap-scale = × typical reach
chart-weekday-mon = Mon
chart-weekday-tue = Tue
chart-weekday-wed = Wed
chart-weekday-thu = Thu
chart-weekday-fri = Fri
chart-weekday-sat = Sat
chart-weekday-sun = Sun
health-reports-given-up = Reports given up in the last 7 days (sending failed for a day): { $count }. The service log says why.
