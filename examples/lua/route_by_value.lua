-- route_by_value.lua: send each order to a table per region: rows with region 'eu' go to
-- `<target table>_eu`, rows with region 'us' to `<target table>_us`, the others stay where the
-- task's routes put them. The target tables must exist. Route on a column that an update never
-- changes: an update is applied to the table its new row routes to.

local regions = { eu = true, us = true }

function on_row(ev)
  local row = ev.after or ev.before
  local region = row.region
  if type(region) == "string" and regions[region:lower()] then
    ev.target_table = ev.target_table .. "_" .. region:lower()
  end
  return true
end
