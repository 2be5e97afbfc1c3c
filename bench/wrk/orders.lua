-- wrk script: POST limit orders near a mid on BTC-USD and ETH-USD from 1,000 accounts.
-- Usage: wrk -t1 -c64 -d10s --latency -s bench/wrk/orders.lua http://127.0.0.1:8080
-- (wrk is a Debian package; it loads the server with far less CPU than loadgen.)
local n = 0
request = function()
  n = n + 1
  local side = (n % 2 == 0) and "BUY" or "SELL"
  local off = (n * 7919) % 100
  local body
  if n % 3 == 0 then
    body = string.format('{"account":%d,"symbol":"ETH-USD","side":"%s","type":"LIMIT","price":"%d.00","quantity":"0.0100"}', 1 + n % 1000, side, 2985 + math.floor(off / 3))
  else
    body = string.format('{"account":%d,"symbol":"BTC-USD","side":"%s","type":"LIMIT","price":"%d.00","quantity":"0.01000"}', 1 + n % 1000, side, 64700 + off * 6)
  end
  return wrk.format("POST", "/orders", {["Content-Type"] = "application/json"}, body)
end
local bad = 0
response = function(status, headers, body)
  if status ~= 201 and bad < 2 then bad = bad + 1; print(status, body) end
end
