-- wrk: POST one request body, read from the file named first after `--`, with the
-- headers that follow it ("Name: value" each): shadow_overhead.py --loadgen wrk passes
-- the v2 JSON body and headers `modelyard bench` sends. wrk.format (called after
-- init) adds Content-Length.
function init(args)
  local file = assert(io.open(args[1], "rb"))
  wrk.method = "POST"
  wrk.body = file:read("*a")
  file:close()
  for i = 2, #args do
    local name, value = args[i]:match("^([^:]+):%s*(.*)$")
    wrk.headers[name] = value
  end
end
