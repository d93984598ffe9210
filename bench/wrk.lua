-- wrk script for `make bench`: sends the requests bench/traffic.py precomputed (Lua cannot
-- compute Twilio's HMAC signatures), one per line, and counts the replies per pair.
--
-- Line format (tab-separated): pair index, path, X-Twilio-Signature, sessionid, form body.
-- Arguments after `--`: file, thread count, path override ("-" for none), and
--   "once": each line is sent at most once (the webhook: a repeated MessageSid is a retry,
--           answered differently); a thread that runs out stops and reports it;
--   "wrap": lines are reused (the no-op view, which reads nothing).
-- done() prints "BENCH ..." lines that bench/load.py parses.

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

local function parse(line)
   local pair, path, signature, cookie, body = line:match("^(%d+)\t([^\t]+)\t([^\t]+)\t([^\t]*)\t(.*)$")
   return tonumber(pair), path, signature, cookie, body
end

function init(args)
   local file, nthreads, override = args[1], tonumber(args[2]), args[3]
   wrap = args[4] == "wrap"
   entries, pair_of_cookie = {}, {}
   local n = 0
   for line in io.lines(file) do
      -- Each thread takes every nthreads-th line, so no two threads send the same one.
      if n % nthreads == id then
         local pair, path, signature, cookie, body = parse(line)
         local headers = {
            ["Content-Type"] = "application/x-www-form-urlencoded",
            ["X-Twilio-Signature"] = signature,
            ["User-Agent"] = "TwilioProxy/1.1",
            -- wrk plays the TLS proxy in front of the app, as in production.
            ["X-Forwarded-Proto"] = "https",
         }
         if cookie ~= "" then
            headers["Cookie"] = "sessionid=" .. cookie
            pair_of_cookie[cookie] = pair
         end
         if override ~= "-" then
            path = override
         end
         -- Formatted once here rather than per request: wrk shares the 2 cores with the server.
         entries[#entries + 1] = { pair = pair, request = wrk.format("POST", path, headers, body) }
      end
      n = n + 1
   end
   -- Sent when the lines run out: a no-op request, so that no MessageSid is ever repeated.
   fallback = wrk.format("POST", "/noop/", { ["X-Forwarded-Proto"] = "https" }, "")
   next_entry = 1
   -- wrk calls request() once on the first thread before the run, to check it; not sent.
   checked = id ~= 0
   sent, ok, statuses = {}, {}, {}
   unmapped, exhausted = 0, 0
end

function request()
   if not checked then
      checked = true
      return entries[1].request
   end
   if next_entry > #entries then
      if not wrap then
         exhausted = exhausted + 1
         wrk.thread:stop()
         return fallback
      end
      next_entry = 1
   end
   local entry = entries[next_entry]
   next_entry = next_entry + 1
   sent[entry.pair] = (sent[entry.pair] or 0) + 1
   return entry.request
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   if status == 200 and not wrap then
      -- Responses do not say which request they answer; the pair's session cookie does.
      local cookie = headers["Set-Cookie"] or headers["set-cookie"]
      local key = cookie and cookie:match("sessionid=([^;]+)")
      local pair = key and pair_of_cookie[key]
      if pair then
         ok[pair] = (ok[pair] or 0) + 1
      else
         unmapped = unmapped + 1
      end
   end
end

local function add(into, from)
   for key, value in pairs(from) do
      into[key] = (into[key] or 0) + value
   end
end

function done(summary, latency, requests)
   local all_sent, all_ok, all_statuses = {}, {}, {}
   local all_unmapped, all_exhausted = 0, 0
   for _, thread in ipairs(threads) do
      add(all_sent, thread:get("sent"))
      add(all_ok, thread:get("ok"))
      add(all_statuses, thread:get("statuses"))
      all_unmapped = all_unmapped + thread:get("unmapped")
      all_exhausted = all_exhausted + thread:get("exhausted")
   end
   local out = io.stdout
   out:write(string.format("BENCH requests %d\n", summary.requests))
   out:write(string.format("BENCH duration_us %d\n", summary.duration))
   out:write(string.format("BENCH p50_us %d\n", latency:percentile(50)))
   out:write(string.format("BENCH p99_us %d\n", latency:percentile(99)))
   out:write(string.format("BENCH max_us %d\n", latency.max))
   for _, kind in ipairs({ "connect", "read", "write", "timeout" }) do
      out:write(string.format("BENCH error %s %d\n", kind, summary.errors[kind]))
   end
   for status, count in pairs(all_statuses) do
      out:write(string.format("BENCH status %d %d\n", status, count))
   end
   for pair, count in pairs(all_sent) do
      out:write(string.format("BENCH pair %d %d %d\n", pair, count, all_ok[pair] or 0))
   end
   out:write(string.format("BENCH unmapped %d\n", all_unmapped))
   out:write(string.format("BENCH exhausted %d\n", all_exhausted))
end
