-- wrk script of the IPN ingest benchmark: posts the bodies in $BODIES (one per line) in turn, from body $START on.
local bodies = {}
for line in io.lines(os.getenv("BODIES")) do bodies[#bodies + 1] = line end
local i = tonumber(os.getenv("START") or "0")
request = function()
  i = i + 1
  return wrk.format("POST", "/ipn/alixpay", {["Content-Type"] = "application/json"}, bodies[((i - 1) % #bodies) + 1])
end
