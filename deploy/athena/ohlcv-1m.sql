-- ticklake-ohlcv-1m: one-minute bars from today's (UTC) trades, per symbol: open, high, low,
-- close, volume, VWAP (the volume-weighted average price) and the number of trades.
SELECT
    symbol,
    date_trunc('minute', event_time) AS minute_start,
    min_by(price, event_time) AS open,
    max(price) AS high,
    min(price) AS low,
    max_by(price, event_time) AS close,
    sum(size) AS volume,
    sum(price * size) / nullif(sum(size), 0) AS vwap,
    count(*) AS trades
FROM "{{database}}"."{{table}}"
WHERE kind = 'trade'
  AND year = date_format(current_date, '%Y')
  AND month = date_format(current_date, '%m')
  AND day = date_format(current_date, '%d')
GROUP BY symbol, date_trunc('minute', event_time)
ORDER BY symbol, minute_start
