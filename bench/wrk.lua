-- wrk script for `make bench`: sends the requests bench/traffic.py wrote (Lua cannot compute
-- Twilio's HMAC signatures), one per line: pair index, path, X-Twilio-Signature, Cookie header,
-- form body, tab-separated. Arguments after `--`: the file, wrk's thread count, and "once" (the
-- webhook: a line is sent at most once, as a repeated MessageSid is a retry; a thread that runs
-- out stops and says so) or "wrap" (lines reused). done() prints what bench/load.py parses.

-- WRK_PACE_MS (environment): each connection waits that long before its next request, so the
-- load is about connections / (pace + latency) requests/s instead of as many as the server can
-- answer. Read at load time: wrk looks for a delay() function before any thread's init().
local pace = tonumber(os.getenv("WRK_PACE_MS") or "0")
if pace > 0 then
   function delay()
      return pace
   end
end

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

function init(args)
   local file, nthreads = args[1], tonumber(args[2])
   wrap = args[3] == "wrap"
   entries, pair_of_cookie = {}, {}
   local n = 0
   for line in io.lines(file) do
      -- Each thread takes every nthreads-th line, so no two threads send the same one.
      if n % nthreads == id then
         local pair, path, signature, cookie, body = line:match("^(%d+)\t([^\t]+)\t([^\t]+)\t([^\t]*)\t(.*)$")
         pair = tonumber(pair)
         local headers = {
            ["Content-Type"] = "application/x-www-form-urlencoded",
            ["X-Twilio-Signature"] = signature,
            ["User-Agent"] = "TwilioProxy/1.1",
            -- wrk plays the TLS proxy in front of the app, as in production.
            ["X-Forwarded-Proto"] = "https",
         }
         if cookie ~= "" then
            headers["Cookie"] = cookie
            pair_of_cookie[cookie] = pair
         end
         -- Formatted once here rather than per request: wrk shares the cores with the server.
         entries[#entries + 1] = { pair = pair, request = wrk.format("POST", path, headers, body) }
      end
      n = n + 1
   end
   -- Sent when the lines run out, so that no MessageSid is ever repeated.
   fallback = wrk.format("GET", "/healthz")
   next_entry = 1
   -- wrk calls request() once on the first thread before the run, to check it; not sent.
   checked = id ~= 0
   sent, ok, counts = {}, {}, {}
end

local function bump(counter, key)
   counter[key] = (counter[key] or 0) + 1
end

function request()
   if not checked then
      checked = true
      return entries[1].request
   end
   if next_entry > #entries then
      if not wrap then
         bump(counts, "exhausted")
         wrk.thread:stop()
         return fallback
      end
      next_entry = 1
   end
   local entry = entries[next_entry]
   next_entry = next_entry + 1
   bump(sent, entry.pair)
   return entry.request
end

function response(status, headers, body)
   bump(counts, "status " .. status)
   if status == 200 and not wrap then
      -- A reply does not say which request it answers; the pair's session cookie does.
      local cookie = headers["Set-Cookie"] or headers["set-cookie"] or ""
      local pair = pair_of_cookie[cookie:match("^[^;]*")]
      if pair then
         bump(ok, pair)
      else
         bump(counts, "unmapped")
      end
   end
end

function done(summary, latency, requests)
   local all = { sent = {}, ok = {}, counts = {} }
   for _, thread in ipairs(threads) do
      for name, into in pairs(all) do
         for key, value in pairs(thread:get(name)) do
            into[key] = (into[key] or 0) + value
         end
      end
   end
   for kind, count in pairs(summary.errors) do
      if kind ~= "status" then -- replies other than 2xx and 3xx, already counted by status
         all.counts["error " .. kind] = count
      end
   end
   local p50, p99, max = latency:percentile(50) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3
   io.write(string.format("BENCH requests %d\nBENCH seconds %f\n", summary.requests, summary.duration / 1e6))
   io.write(string.format("BENCH p50_ms %f\nBENCH p99_ms %f\nBENCH max_ms %f\n", p50, p99, max))
   for name, count in pairs(all.counts) do
      io.write(string.format("BENCH %s %d\n", name, count))
   end
   for pair, count in pairs(all.sent) do
      io.write(string.format("BENCH pair %d %d %d\n", pair, count, all.ok[pair] or 0))
   end
end
