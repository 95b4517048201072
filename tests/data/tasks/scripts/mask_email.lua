-- mask_email.lua: a corpus script for the task compiler tests (loaded and checked, never run).
function on_row(ev)
  local row = ev.after
  if row and row.email then
    row.email = "***"
  end
  return true
end

function on_ddl(ev)
  return true
end
