-- wrk script for a bounded load test of POST /v1/predictions (scripts/load_test.sh):
-- every connection sends the same JSON body; each wrk thread stops after its share of
-- FALCON_REQUESTS answers, so the run is a fixed number of requests, not a duration.
local body_path = os.getenv("FALCON_BODY")
local total = tonumber(os.getenv("FALCON_REQUESTS") or "100")

wrk.method = "POST"
wrk.path = "/v1/predictions"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(body_path, "rb"), "FALCON_BODY: cannot open " .. tostring(body_path))
wrk.body = f:read("*a")
f:close()

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

-- Each thread runs in a Lua state of its own that cannot see `threads`, so the thread
-- count (wrk -t) comes from the environment too.
function init(args)
  answered, failed = 0, 0
  limit = math.ceil(total / tonumber(os.getenv("FALCON_THREADS") or "1"))
end

function response(status, headers, body)
  answered = answered + 1
  if status ~= 200 then failed = failed + 1 end
  if answered >= limit then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local failed_total, answered_total = 0, 0
  for _, t in ipairs(threads) do
    failed_total = failed_total + t:get("failed")
    answered_total = answered_total + t:get("answered")
  end
  local secs = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d failed=%d seconds=%.2f throughput_rps=%.3f p50_ms=%.1f p90_ms=%.1f p99_ms=%.1f max_ms=%.1f\n",
    answered_total, failed_total, secs, answered_total / secs, latency:percentile(50) / 1e3,
    latency:percentile(90) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3))
end
