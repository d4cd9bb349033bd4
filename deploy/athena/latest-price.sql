-- ticklake-latest-price: the last price of every symbol seen today or yesterday (UTC):
-- the price of its latest trade, or the close of its latest bar for daily-bar feeds.
SELECT
    symbol,
    max_by(coalesce(price, close), event_time) AS price,
    max(event_time) AS event_time
FROM "{{database}}"."{{table}}"
WHERE kind IN ('trade', 'bar')
  AND year IN (date_format(current_date, '%Y'), date_format(current_date - INTERVAL '1' DAY, '%Y'))
  AND month IN (date_format(current_date, '%m'), date_format(current_date - INTERVAL '1' DAY, '%m'))
  AND day IN (date_format(current_date, '%d'), date_format(current_date - INTERVAL '1' DAY, '%d'))
  AND event_time >= CAST(current_date - INTERVAL '1' DAY AS timestamp)
GROUP BY symbol
ORDER BY symbol
