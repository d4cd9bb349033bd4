-- ticklake-ticks-per-hour: ticks per hour of event time (UTC) today and yesterday, by kind,
-- with the number of distinct symbols: is data arriving, and how much.
SELECT
    date_trunc('hour', event_time) AS hour_start,
    kind,
    count(*) AS ticks,
    count(DISTINCT symbol) AS symbols
FROM "{{database}}"."{{table}}"
WHERE year IN (date_format(current_date, '%Y'), date_format(current_date - INTERVAL '1' DAY, '%Y'))
  AND month IN (date_format(current_date, '%m'), date_format(current_date - INTERVAL '1' DAY, '%m'))
  AND day IN (date_format(current_date, '%d'), date_format(current_date - INTERVAL '1' DAY, '%d'))
  AND event_time >= CAST(current_date - INTERVAL '1' DAY AS timestamp)
GROUP BY date_trunc('hour', event_time), kind
ORDER BY hour_start, kind
