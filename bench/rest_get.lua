-- REST: plain GET of the URL given to wrk (e.g. /v1/v1/customers/c-1).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")
