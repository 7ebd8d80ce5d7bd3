-- MCP handshake era (2025-11-25), stateless: one POST tools/call per request, no initialize, no session.
-- BENCH_TOOL names the tool (naftiko: get-customer; FastMCP slugifies it to get_customer).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")
local tool = os.getenv("BENCH_TOOL") or "get-customer"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"' .. tool ..
  '","arguments":{"customer_id":"c-1"}}}'
