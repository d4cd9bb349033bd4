-- ticklake-top-movers: today's (UTC) 25 biggest movers: the percent change from each symbol's
-- first to its last price today (trades' price, bars' close), largest moves either way first.
SELECT
    symbol,
    first_price,
    last_price,
    round(100 * (last_price - first_price) / first_price, 2) AS change_pct,
    ticks
FROM (
    SELECT
        symbol,
        min_by(coalesce(price, close), event_time) AS first_price,
        max_by(coalesce(price, close), event_time) AS last_price,
        count(*) AS ticks
    FROM "{{database}}"."{{table}}"
    WHERE kind IN ('trade', 'bar')
      AND year = date_format(current_date, '%Y')
      AND month = date_format(current_date, '%m')
      AND day = date_format(current_date, '%d')
    GROUP BY symbol
) AS today
WHERE first_price > 0
ORDER BY abs(last_price - first_price) / first_price DESC, symbol
LIMIT 25
