-- mask_email.lua: replace the local part of e-mail addresses in column `email` before they reach
-- the target: "alice@example.com" -> "a****@example.com". Deterministic, so the masked before
-- image of an update or delete still matches the masked row the target holds.

local function mask(addr)
  local user, domain = addr:match("^([^@]+)@(.+)$")
  if not user then
    return addr                     -- not an address: leave it alone
  end
  return user:sub(1, 1) .. string.rep("*", 4) .. "@" .. domain
end

local function mask_row(row)
  if row and type(row.email) == "string" then
    row.email = mask(row.email)
  end
end

function on_row(ev)
  mask_row(ev.before)
  mask_row(ev.after)
  return true
end
