-- wrk script for bench/load/load.sh: POST a small JSON argument, report as JSON.
wrk.method = "POST"
wrk.body = '{"name": "load", "n": 42}'
wrk.headers["Content-Type"] = "application/json"
-- prewarmd's TCP API always wants its bearer token (load.sh passes the one the daemon made).
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("PREWARM_TOKEN") or "")

local bad = 0
function response(status, headers, body)
   if status ~= 200 or not body:find('"greeting"', 1, true) then
      bad = bad + 1
   end
end

local threads = {}
function setup(thread)
   table.insert(threads, thread)
end

function done(summary, latency, requests)
   local wrong = 0
   for _, t in ipairs(threads) do
      wrong = wrong + (t:get("bad") or 0)
   end
   local e = summary.errors
   io.write(string.format(
      '{"requests": %d, "duration_s": %.3f, "rps": %.1f, "p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, ' ..
      '"p999_ms": %.3f, "max_ms": %.3f, "mean_ms": %.3f, "non_2xx": %d, "wrong_body": %d, ' ..
      '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d}\n',
      summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
      latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
      latency:percentile(99.9) / 1e3, latency.max / 1e3, latency.mean / 1e3, e.status, wrong,
      e.connect, e.read, e.write, e.timeout))
end
