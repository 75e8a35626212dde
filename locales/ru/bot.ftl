# Сообщения бота по-русски. Telegram HTML: только <b>, <i>, <pre>, <code>; плейсхолдеры с
# текстом пользователя или канала приходят уже экранированными. Целые числа группирует
# форматтер кода (узкий неразрывный пробел).

## Числа

n-channels = { $count ->
    [one] { $count } канал
    [few] { $count } канала
   *[many] { $count } каналов
}
n-days = { $count ->
    [one] { $count } день
    [few] { $count } дня
   *[many] { $count } дней
}
age-seconds = { $n } с назад
age-minutes = { $n } мин назад
age-hours = { $n } ч назад
age-days = { $n } дн. назад
never = никогда
not-available = н/д

## Доступ

refusal = Извините, это закрытый бот.
internal-error = Извините, запрос не удался по нашей вине. Ошибка записана; попробуйте ещё раз или обратитесь к администратору.
too-many-requests = Слишком много запросов; подождите { $seconds } с. (Каждый пользователь может отправлять несколько команд в минуту.)
admins-only = Эта команда для администраторов; у вас роль наблюдателя (только чтение).
viewer-granted = { $user } теперь наблюдатель (только чтение).
viewer-already = { $user } уже является наблюдателем.
viewer-revoked = { $user } больше не наблюдатель.
viewer-was-not = { $user } не был наблюдателем.
viewers-title = <b>Наблюдатели</b>: { $count }
viewers-line = { $user } (выдал { $by }, { $date })

## Аргументы

usage = Как писать: { $usage }
usage-stats = /stats @канал [дней], например /stats @durov 90
usage-compare = /compare @a @b .. [дней], от 2 до 10 каналов, например /compare @durov @telegram 30
usage-export = /export @канал [parquet|csv] [дней] [members|views|posts|samples], например /export @durov csv 90
usage-add = /add @канал, например /add @durov
usage-remove = /remove @канал, например /remove @durov
usage-grant = /grant user_id, например /grant 123456789 (числовой id пользователя Telegram)
usage-mentions = /mentions @канал [дней], например /mentions @durov 30
arg-not-a-channel = «{ $word }» — не канал. Напишите его @имя (4–32 латинские буквы, цифры или _, начиная с буквы) или числовой id.
arg-not-a-handle = «{ $word }» — не имя канала (4–32 латинские буквы, цифры или _, начиная с буквы).
arg-which-channel = Какой канал?
arg-one-channel = По одному каналу, пожалуйста.
arg-not-days = «{ $word }» — не число дней; укажите целое число от 1 до 3650.
arg-too-many = Слишком много аргументов.
arg-compare-too-few = Для сравнения нужно хотя бы 2 разных канала.
arg-compare-too-many = Не больше { $most } каналов за раз (указано { $given }).
arg-unknown-word = Не понимаю «{ $word }».
arg-not-a-user = «{ $word }» — не id пользователя.
arg-none = { "" }

## /stats, /compare, /list, /health

window = { $from } … { $to } ({ $days }, { $zone })
row-members = подписчики
row-delta = изменение
row-baseline = база
row-mean-daily-growth = средний прирост
row-best-day = лучший день
row-worst-day = худший день
row-posts = посты
row-avg-post-reach = средний охват поста
row-err = ERR
row-index-at-end = индекс в конце
row-days-with-members = дней с данными
row-last-sample = последний замер
row-reach-at = охват за { $hours } ч
row-err24 = ERR 24 ч (наш)
row-frequency = частота постов
value-of-posts = { $value } ({ $posts ->
    [one] { $posts } пост
    [few] { $posts } поста
   *[many] { $posts } постов
})
frequency-gap = медианный интервал { $hours } ч
frequency-from-counter = (по счётчику постов)
value-on-day = { $value } ({ $day })
per-day = { $value } в день
n-of-m = { $n } из { $m }
compare-title = Сравнение
compare-index-note = индекс: подписчики ÷ подписчики в начале периода × 100
col-channel = канал
col-members = подписч.
col-change = измен.
col-growth = рост
col-err = ERR
col-index = индекс
col-day = день
col-sampled = замер
list-empty = Пока ни один канал не отслеживается. Добавьте канал командой /add @канал.
list-title = <b>Отслеживаемые каналы</b>: { $count } (страница { $page } из { $pages })
storage-timescale = TimescaleDB (гипертаблицы, непрерывные агрегаты)
storage-plain = обычный PostgreSQL
health =
    <b>Состояние</b>
    хранилище: { $storage }
    отслеживается каналов: { $watched }
    замеров за последний час: { $last_hour }
    замеров за последние сутки: { $last_day }
health-no-source = Ни один источник ещё не запускался (сборщики запускает tgpulse serve).
health-source = <b>{ $source }</b>: последний успех { $last } (отставание { $lag }), заданий успешно { $ok }, с ошибкой { $failed }
health-last-error = { "  " }последняя ошибка { $age }: { $error }
ago-suffix = назад

## /help и меню команд

help-intro = tgpulse: статистика каналов из вашей собственной базы данных.
help-viewer = У вас роль наблюдателя (только чтение): /add, /remove, /grant и /revoke — для администраторов.
cmd-start = что умеет этот бот
cmd-help = список команд
cmd-add = @канал: начать собирать канал (админы)
cmd-remove = @канал: перестать собирать канал, с подтверждением (админы)
cmd-list = отслеживаемые каналы: подписчики, изменение за день, последний замер
cmd-stats = @канал [дней]: сводка и график (по умолчанию 30 дней)
cmd-compare = @a @b .. [дней]: от 2 до 10 каналов рядом, индекс роста
cmd-mentions = @канал [дней]: кто репостит и упоминает канал и кого он сам (по умолчанию 30 дней)
cmd-export = @канал [parquet|csv] [дней] [members|views|posts|samples]: файл
cmd-health = хранилище, последний успех и отставание источников, свежие замеры
cmd-grant = user_id: дать пользователю роль наблюдателя (админы)
cmd-revoke = user_id: забрать роль наблюдателя (админы)
cmd-viewers = у кого роль наблюдателя (админы)
cmd-alerts = открытые оповещения; on|off для себя; set, mute, on|off по каналу (админы)
cmd-reports = on|off: еженедельные и ежемесячные отчёты
cmd-lang = en|ru: язык бота (auto: как в Telegram)
unknown-command = Я не знаю команды { $command }.
unreadable-command = Не удалось разобрать команду.

## /lang

lang-current = Я отвечаю вам по-русски. /lang en — in English; /lang auto — на языке вашего Telegram.
lang-usage = Как писать: /lang en, /lang ru или /lang auto (язык вашего Telegram).
lang-set = Теперь я отвечаю вам по-русски.
lang-auto = Снова говорю на языке вашего Telegram.

channel-unknown = неизвестный канал { $channel }: его не добавляли и не импортировали (см. `tgpulse import` или /add)
channel-unknown-hint = Проверьте написание или начните собирать канал: /add { $handle }.
channel-ambiguous = имя { $handle } неоднозначно: оно указывало на каналы { $ids }; используйте числовой id
no-samples-yet = У { $channel } ещё нет замеров; сборщики заполнят его в течение часа.
query-timeout = Запрос превысил лимит времени базы данных и был остановлен. Попробуйте окно короче или повторите через минуту.
button-compare-with = Сравнить с…
button-export = Экспорт
button-views = Просмотры
button-best-time = Лучшее время
button-top-posts = Топ постов
button-expired = Срок действия кнопки истёк; отправьте команду ещё раз.
button-failed = Что-то пошло не так; попробуйте через минуту.
compare-with-ask = С какими каналами сравнить <b>{ $channel }</b>? Пришлите от 1 до 9 @имён, например <code>@durov @telegram</code>.
send-a-command = Отправьте команду, например /stats @канал 30. /help — все команды.

## /add, /remove

add-no-resolver = Ни один источник не умеет находить каналы по имени: настройте [{ $via }] в файле источников.
add-not-found = { $via } не находит { $handle }. Проверьте написание; для закрытого канала бот (или аккаунт) должен быть его участником.
add-failed = Сейчас не удалось найти { $handle } через { $via }: { $error }. Попробуйте позже.
add-done = Начинаю собирать <b>{ $handle }</b> (id { $id }){ $title }. Работающие сборщики подхватят его в течение 5 минут; подписчики считываются раз в час.
add-already = <b>{ $handle }</b> (id { $id }){ $title } уже собирается.
remove-not-watched = { $channel } не собирается; удалять нечего.
remove-ask = Перестать собирать <b>{ $channel }</b>? Его замеры останутся в базе.
remove-stopped-short = Остановлено.
remove-stopped = Сбор <b>{ $channel }</b> остановлен; работающие сборщики отпустят его в течение 5 минут. Его замеры остаются в базе.
remove-was-not = <b>{ $channel }</b> уже не собирался.
remove-admins-only = Удалять каналы могут только администраторы.
cancelled-short = Отменено.
cancelled = Отменено; ничего не изменилось.
button-remove-yes = Да, перестать собирать
button-cancel = Отмена
button-previous = ‹ назад
button-next = вперёд ›

## /export

export-pressed = Экспортирую…
export-still-running = Ваш предыдущий экспорт ещё идёт; его сообщение о статусе скажет, когда он закончится. Потом отправьте /export снова.
export-scope-days = { $days ->
    [one] последний { $days } день с данными
    [few] последние { $days } дня с данными
   *[many] последние { $days } дней с данными
}
export-scope-all = все данные
export-started = Экспортирую { $relation } канала <b>{ $channel }</b> ({ $scope }) в { $format }…
export-shutdown = Бот останавливается, поэтому экспорт прерван; ничего неполного не отправлено как готовое. Отправьте /export позже.
export-failed = Экспорт { $relation } для { $channel } не удался: { $error }. Ничего неполного не отправлено как готовое; попробуйте ещё раз или воспользуйтесь CLI.
export-allowance-used = Вы исчерпали сегодняшний лимит экспорта (использовано байт: { $used } из { $quota }); он обновится в 00:00 UTC.
export-over-allowance = Экспорт остановлен (отправлено файлов: { $sent }): следующий файл, байт: { $bytes }, превысил бы ваш сегодняшний лимит (байт: { $quota }); лимит обновится в 00:00 UTC.
export-nothing = В { $relation } нет строк для { $channel }; экспортировать нечего.
export-done = Готово: { $rows ->
    [one] { $rows } строка
    [few] { $rows } строки
   *[many] { $rows } строк
} { $relation } для <b>{ $channel }</b>, { $files ->
    [one] { $files } файл
    [few] { $files } файла
   *[many] { $files } файлов
}.
export-file-caption = { $rows ->
    [one] { $rows } строка
    [few] { $rows } строки
   *[many] { $rows } строк
} { $relation } для { $channel }
export-part-last = часть { $part }, последняя: { $rows ->
    [one] { $rows } строка
    [few] { $rows } строки
   *[many] { $rows } строк
}
export-part = часть { $part }: { $rows ->
    [one] { $rows } строка
    [few] { $rows } строки
   *[many] { $rows } строк
}
export-in-parts = { $relation } канала <b>{ $channel }</b> больше лимита загрузки Telegram в { $mb } МБ, поэтому придёт несколькими файлами, каждый целый сам по себе…
export-progress = Экспортирую { $relation } канала <b>{ $channel }</b> — прочитано строк: { $rows }…

## /alerts и оповещения

usage-alerts =
    /alerts — открытые оповещения и 10 последних закрытых
    /alerts on | /alerts off — ваши уведомления
    /alerts set @канал members_change 15 — порог для канала (админы)
    /alerts mute @канал 7d — без уведомлений на время (админы)
    /alerts off @канал no_posts | /alerts on @канал no_posts — правило для канала (админы)
alerts-unknown-rule = неизвестное правило `{ $word }`; ожидается members_change, views_drop, no_posts или unusual_change
alerts-stale-not-per-channel = source_stale не настраивается по каналам.
alerts-not-a-number = «{ $word }» — не число.
alerts-bad-threshold = Это не порог для { $rule }: нужно положительное число (для views_drop — меньше 100).
alerts-bad-mute = Отключить можно на срок от 1d до { $most }d, например 7d.
alerts-not-understood = Не понял.
alerts-admins-only = Правила оповещений меняют только администраторы. Свои уведомления вы можете включить или выключить: /alerts on или /alerts off.
alerts-notify-on = Вы будете получать новые оповещения.
alerts-notify-off = Вы больше не будете получать новые оповещения (/alerts on — вернуть).
alerts-threshold-set = { $rule } для { $channel }: порог { $threshold }.
alerts-rule-on = { $rule } включено для { $channel }.
alerts-rule-off = { $rule } выключено для { $channel }.
alerts-muted = Уведомления по { $channel } отключены до { $until } UTC: оповещения записываются, но никто не получает их.
alerts-mute-admins-only = Отключать уведомления по каналам могут только администраторы.
unit-median-gap = { $value } × медианный интервал
unit-robust-z = { $value } (робастный z)
unit-members-interval = { $value } × интервал опроса подписчиков
alerts-none-open = <b>Открытых оповещений нет.</b>
alerts-open-title = <b>Открытые оповещения ({ $count })</b>
alerts-open-line = • { $channel } <b>{ $rule }</b> с { $day }: { $detail }
alerts-resolved-title = <b>Недавно закрытые</b>
alerts-list-footer = /alerts on|off — ваши уведомления
alerts-digest-title = 🔔 <b>{ $count ->
    [one] { $count } новое оповещение
    [few] { $count } новых оповещения
   *[many] { $count } новых оповещений
}</b>
alerts-digest-footer = /alerts — список открытых.
alert =
    🔔 <b>{ $channel }</b>: { $rule }, { $day }
    { $detail }
    до { $before } · после { $after } · изменение { $change } · порог { $threshold }
detail-members_change = подписчики { $before } → { $after } ({ $change })
detail-unusual_change = изменение за день { $delta } при обычном { $typical } (робастный z { $z })
detail-no_posts = нет постов { $silent } ч; обычно посты выходят каждые { $gap } ч (предел { $limit } ч)
detail-views_drop = средний охват за 24 ч { $reach } против { $before } в предыдущие недели ({ $change })
detail-source_stale = источник { $source } не работает успешно уже { $hours } ч (предел { $limit } ч: { $intervals } × его интервал опроса подписчиков)
button-mute-7 = Тишина 7 дней
button-stats = Статистика
button-compare = Сравнить

## Отчёты

usage-reports =
    /reports on — еженедельные (по понедельникам) и ежемесячные (1-го числа) отчёты по всем отслеживаемым каналам
    /reports off — больше не присылать отчёты
reports-on = Вы будете получать еженедельные и ежемесячные отчёты. /reports off — отписаться.
reports-off = Отчётов больше не будет. /reports on — подписаться снова.
report-chart-caption = Индекс роста 10 крупнейших каналов (100 = начало периода)
report-title-weekly = Еженедельный отчёт, { $from } – { $to } ({ $zone })
report-title-monthly = Ежемесячный отчёт, { $from } – { $to } ({ $zone })
report-line = { $channel }: <b>{ $members }</b> ({ $delta }, { $growth }) · посты { $posts } · охват { $reach } · ERR { $err }
report-growers = Лидеры роста
report-losers = Лидеры падения
report-none = нет
report-alerts = Оповещения ({ $count })

## Аналитика постов (кнопки под /stats) и /mentions

posts-chart-empty = Нет просмотров постов { $channel } за этот период; рисовать нечего.
views-title = <b>Просмотры</b> по дням публикации, { $window }
views-row-days = дней с постами
views-row-total = просмотры
views-row-avg7 = среднее за 7 дней
views-row-change = изменение среднего
views-note = Просмотры поста — наибольшее замеченное число, учтённое в день публикации; в среднем за 7 дней дни без постов считаются нулями.
weekday = { $day ->
    [0] понедельник
    [1] вторник
    [2] среда
    [3] четверг
    [4] пятница
    [5] суббота
   *[6] воскресенье
}
best-time-title = <b>Лучшее время для постов</b>, { $window }
best-time-top = Лучшие часы недели по медианному охвату постов:
best-time-slot = { $n }. { $weekday }, { $from }–{ $to }: медианный охват { $reach }, ×{ $index } к обычному посту канала ({ $posts ->
    [one] { $posts } пост
    [few] { $posts } поста
   *[many] { $posts } постов
})
best-time-none = Пока ни в одном часе недели нет { $min ->
    [one] { $min } поста
   *[other] { $min } постов
} или больше.
best-time-basis-reach24 = Охват — просмотры каждого поста через 24 часа после публикации.
best-time-basis-latest = Охват — последние просмотры каждого поста (эти посты впервые прочитаны, когда им было больше суток, например при импорте).
best-time-basis-mixed = Охват — просмотры через 24 часа после публикации, где они известны, иначе последние просмотры постов, впервые прочитанных старше суток.
best-time-empty-cells = Часы, где меньше { $min ->
    [one] { $min } поста
   *[other] { $min } постов
}, оставлены пустыми. Дни недели и часы — по времени { $zone }.
top-posts-title = <b>Топ постов</b> { $channel }
top-posts-count = { $count ->
    [one] { $count } пост
    [few] { $count } поста
   *[many] { $count } постов
} за период
top-by-reach = <b>По охвату</b> (наибольшее число просмотров)
top-by-engagement = <b>По вовлечённости</b> ((репосты + комментарии + реакции) ÷ просмотры)
top-post-line = { $n }. { $date } · просмотры { $views } · вовлечённость { $engagement } · { $link }
top-post-no-link = пост { $id }
top-none = за период нет
mentions-title = <b>Репосты и упоминания</b>, { $window }
mentions-incoming = <b>Кто репостит и упоминает { $channel } или ссылается на него</b> (входящие, топ { $top })
mentions-outgoing = <b>Кого { $channel } репостит, упоминает или на кого ссылается</b> (исходящие, топ { $top })
mentions-peer = { $n }. { $peer } — { $posts ->
    [one] { $posts } пост
    [few] { $posts } поста
   *[many] { $posts } постов
}: { $kinds }
mentions-forwards = { $count ->
    [one] { $count } репост
    [few] { $count } репоста
   *[many] { $count } репостов
}
mentions-mentions = { $count ->
    [one] { $count } упоминание
    [few] { $count } упоминания
   *[many] { $count } упоминаний
}
mentions-links = { $count ->
    [one] { $count } ссылка
    [few] { $count } ссылки
   *[many] { $count } ссылок
}
mentions-reach = охват { $reach }
mentions-none = за этот период нет
mentions-days = <b>Дни с наибольшим числом входящих постов</b> и изменение числа подписчиков на следующий день. Это корреляция, а не причина: подписчики меняются и по другим причинам.
mentions-day = { $day }: { $posts ->
    [one] { $posts } пост
    [few] { $posts } поста
   *[many] { $posts } постов
}, охват { $reach } → подписчики на следующий день { $change }
mentions-empty-hint = tgpulse берёт репосты, упоминания и ссылки из файла постов, MTProto и TGStat; для этого канала за период ничего не записано.

## Графики

chart-members-title = { $channel } — подписчики, { $from } – { $to } ({ $zone })
chart-members = подписчики
chart-members-legend = подписчики (сейчас { $last })
chart-daily-delta = изменение за день
chart-gain = прирост
chart-loss = убыль
chart-compare-title = Индекс роста (100 = начало периода), { $from } – { $to } ({ $zone })
chart-index = индекс
chart-compare-legend = { $channel }  { $index }  (подписчиков: { $members })
chart-no-data = { $channel }  (нет данных)
chart-empty = Нет данных о подписчиках { $channel } за этот период; рисовать нечего.
chart-failed = Не удалось нарисовать график: { $error }
chart-views-title = { $channel } — просмотры постов, { $from } – { $to } ({ $zone })
chart-views = просмотры
chart-views-bars = просмотры постов дня
chart-views-avg = среднее за 7 дней
chart-views-avg-change = среднее за 7 дней ({ $change } за период)
chart-heatmap-title = { $channel } — лучшее время для постов, { $from } – { $to } ({ $zone })
chart-heatmap-posts = { $posts ->
    [one] { $posts } пост
    [few] { $posts } поста
   *[many] { $posts } постов
}
chart-heatmap-basis-reach24h = охват: просмотры через 24 ч после публикации
chart-heatmap-basis-latest = охват: последние просмотры (посты впервые прочитаны позже 24 ч)
chart-heatmap-basis-mixed = охват: просмотры через 24 ч или последние просмотры постов, прочитанных позже
chart-heatmap-median = 1,0 = обычный (медианный) охват, { $median ->
    [one] { $median } просмотр
    [few] { $median } просмотра
   *[many] { $median } просмотров
}
chart-heatmap-sparse = ячейки, где меньше { $min ->
    [one] { $min } поста
   *[other] { $min } постов
}, пустые
chart-heatmap-hour = час суток
chart-heatmap-scale = × обычного охвата
chart-weekday-mon = Пн
chart-weekday-tue = Вт
chart-weekday-wed = Ср
chart-weekday-thu = Чт
chart-weekday-fri = Пт
chart-weekday-sat = Сб
chart-weekday-sun = Вс
health-reports-given-up = Отчётов, отправку которых бросили за последние 7 дней (сутки неудачных попыток): { $count }. Причина — в журнале сервиса.
