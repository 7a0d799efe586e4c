-- wrk script: POST /v1/reservations with a unique reservationId per request.
-- Arguments (after --): run id, sku, checkout token.
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  counter = 0
  run = args[1] or "run"
  sku = args[2] or "bench"
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. (args[3] or "dev-checkout-token")
end

function request()
  counter = counter + 1
  local id = run .. "-" .. tid .. "-" .. counter
  local body = '{"reservationId":"' .. id .. '","orderId":"o-' .. id ..
    '","region":"east","lines":[{"sku":"' .. sku .. '","quantity":1}],"ttlSeconds":3600,"allowSplit":true}'
  return wrk.format(nil, "/v1/reservations", nil, body)
end
