-- wrk script: POST /v1/reservations with a unique reservationId per request.
-- Arguments (after --): run id, sku, checkout token.
--
-- The load generator shares this machine's CPU with the server, so each request is built from
-- parts prepared once in init(): only the id and the Content-Length change per request (instead
-- of wrk.format rebuilding every header line each time).
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  counter = 0
  local run = args[1] or "run"
  local sku = args[2] or "bench"
  local token = args[3] or "dev-checkout-token"
  idPrefix = run .. "-" .. tid .. "-"
  head = "POST /v1/reservations HTTP/1.1\r\n" ..
    "Host: " .. wrk.headers["Host"] .. "\r\n" ..
    "Content-Type: application/json\r\n" ..
    "Authorization: Bearer " .. token .. "\r\n" ..
    "Content-Length: "
  bodyStart = '{"reservationId":"'
  bodyMiddle = '","orderId":"o-'
  bodyEnd = '","region":"east","lines":[{"sku":"' .. sku .. '","quantity":1}],"ttlSeconds":3600,"allowSplit":true}'
end

function request()
  counter = counter + 1
  local id = idPrefix .. counter
  local body = bodyStart .. id .. bodyMiddle .. id .. bodyEnd
  return head .. #body .. "\r\n\r\n" .. body
end
