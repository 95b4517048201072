-- drop_soft_deleted.lua: rows whose `deleted_at` is set are soft-deleted at the source; they never
-- reach the target. An update that soft-deletes a row removes it from the target (the update
-- becomes a delete); an update that restores it puts it back (the update becomes an insert).

local function deleted(row)
  return row ~= nil and row.deleted_at ~= nil
end

function on_row(ev)
  if ev.type == "insert" then
    return not deleted(ev.after)
  elseif ev.type == "delete" then
    return not deleted(ev.before)
  end
  local was, is = deleted(ev.before), deleted(ev.after)
  if was and is then
    return false                    -- the target does not have it: nothing to do
  elseif is then
    ev.type = "delete"              -- soft delete: remove the row from the target
  elseif was then
    ev.type = "insert"              -- restored: the row comes back
  end
  return true
end
