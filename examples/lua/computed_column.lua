-- computed_column.lua: fill the target's `full_name` column (which the source table does not
-- have) from `first_name` and `last_name`. The target table must have the column: a script can
-- only write columns that exist in the target table.

function on_row(ev)
  local row = ev.after
  if row then                       -- inserts and updates; a delete needs no derived value
    local first, last = row.first_name, row.last_name
    if first and last then
      row.full_name = first .. " " .. last
    else
      row.full_name = first or last -- nil (NULL) when both are NULL
    end
  end
  return true
end
