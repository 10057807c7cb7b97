--[[
report.lua: the mini template language of weekly_report.qmd (a pandoc / Quarto Lua filter).

The document holds layout and structure only; every word and number comes from the report
data prepared by seedtest_assets.report_artifacts.content (one JSON object per student).

  [path]{.v}                        a value (text) from the data, e.g. [student.name]{.v}
  [path]{.chart width="100%"}       an SVG chart (markup string) from the data
  ::: {.if test="path"} ... :::     kept when the value is truthy ("not path" negates)
  ::: {.for each="x in path"} ...   repeated for each element of a list; a single bullet
                                    list inside becomes one list with an item per element
  ::: {.rows each="x in path"}      around a pipe table whose single body row is repeated
                                    for each element (the header row is kept)

Paths are dotted names: a loop variable or a key of the data, then keys (`t.name`).
Truthy = not null/false/""/0 and not an empty list or object (Jinja's rule).

Two modes, chosen by metadata:
  data mode      `report-data` (pandoc -M / quarto -M) or `params.data` names a JSON file:
                 the values are filled in here (one document per student: the slow route,
                 and what `quarto render weekly_report.qmd` does with the sample data).
  template mode  `report-mode: template`: every construct becomes a Jinja2 tag with the
                 delimiters {{= =}} and {%= =%}, so one pandoc run per batch produces an HTML
                 and a typst template that Python fills per student (the fast route). Values
                 are escaped by Jinja: HTML autoescape, and typst string literals
                 (`#"..."` via the `typst_text` filter; Korean words in boxes, see
                 there), so data never becomes markup.
Only HTML and typst output are supported in template mode.
]]

local mode = "data"
local data = nil

local function is_html()
  return FORMAT:match("html") ~= nil
end

local function is_typst()
  return FORMAT:match("typst") ~= nil
end

local function typst_string(s)
  s = s:gsub("\\", "\\\\"):gsub('"', '\\"'):gsub("\n", "\\n"):gsub("\r", "\\r")
  return '"' .. s .. '"'
end

local function has_hangul(s)
  for _, c in utf8.codes(s) do
    if c >= 0xAC00 and c <= 0xD7AF then
      return true
    end
  end
  return false
end

-- A value as typst text with each word holding Hangul in a box, so that lines break between
-- Korean words, not inside them (keep-all); the same as render.typst_text in Python.
local function typst_text(s)
  if not has_hangul(s) then
    return typst_string(s)
  end
  local parts, plain = {}, ""
  local pos = 1
  while pos <= #s do
    local a, b = s:find("%s+", pos)
    local word_end = a and a - 1 or #s
    local word = s:sub(pos, word_end)
    if word ~= "" then
      if has_hangul(word) then
        if plain ~= "" then
          parts[#parts + 1] = typst_string(plain)
          plain = ""
        end
        parts[#parts + 1] = "box(" .. typst_string(word) .. ")"
      else
        plain = plain .. word
      end
    end
    if not a then
      break
    end
    plain = plain .. s:sub(a, b)
    pos = b + 1
  end
  if plain ~= "" then
    parts[#parts + 1] = typst_string(plain)
  end
  return "{" .. table.concat(parts, "; ") .. "}"
end

local function truthy(v)
  if v == nil or v == pandoc.json.null or v == false or v == "" or v == 0 then
    return false
  end
  if type(v) == "table" then
    return next(v) ~= nil
  end
  return true
end

-- Scope: a chain of {name = value} tables ending with the data root.
local function lookup(scope, path)
  local head, rest = path:match("^([%w_]+)(.*)$")
  if not head then
    error("report.lua: bad path " .. path)
  end
  local value = nil
  local s = scope
  while s do
    if s.vars[head] ~= nil then
      value = s.vars[head]
      break
    end
    s = s.parent
  end
  if value == nil and data then
    value = data[head]
  end
  for key in rest:gmatch("%.([%w_]+)") do
    if type(value) ~= "table" then
      return nil
    end
    value = value[key]
  end
  return value
end

local function text_of(v)
  if v == nil or v == pandoc.json.null then
    return ""
  end
  if type(v) == "number" then
    -- integers print without ".0"
    if math.type(v) == "integer" or v == math.floor(v) then
      return string.format("%d", v)
    end
    return tostring(v)
  end
  return tostring(v)
end

local function parse_each(each)
  local var, path = each:match("^%s*([%w_]+)%s+in%s+([%w_%.]+)%s*$")
  if not var then
    error("report.lua: bad each=" .. each .. " (want 'x in path')")
  end
  return var, path
end

local function parse_test(test)
  local negate, path = test:match("^%s*(not%s+)([%w_%.]+)%s*$")
  if path then
    return true, path
  end
  return false, test:match("^%s*([%w_%.]+)%s*$")
end

local function write(blocks)
  -- No line wrapping: a wrapped line inside a typst list item would end the item.
  local out = pandoc.write(pandoc.Pandoc(blocks), FORMAT, { wrap_text = "wrap-none" })
  return (out:gsub("%s+$", ""))
end

local function raw_block(s)
  return pandoc.RawBlock(is_html() and "html" or "typst", s)
end

local function raw_inline(s)
  return pandoc.RawInline(is_html() and "html" or "typst", s)
end

-- Values ------------------------------------------------------------------------------------
local function value_inline(path, scope)
  if mode == "template" then
    if is_html() then
      return raw_inline("{{= " .. path .. " =}}")
    end
    -- `;` ends the embedded expression so following text stays markup.
    return raw_inline("#{{= " .. path .. " | typst_text =}};")
  end
  -- typst: a string literal here too, so both modes produce the same document (and a
  -- value is never read as markup: "-0.4" stays a hyphen, "*x*" stays stars).
  local text = text_of(lookup(scope, path))
  if is_typst() then
    return raw_inline("#" .. typst_text(text) .. ";")
  end
  return pandoc.Str(text)
end

local function chart_inline(path, width, scope)
  width = width or "100%"
  if is_html() then
    if mode == "template" then
      return raw_inline('<div class="chart">{{= ' .. path .. " | safe =}}</div>")
    end
    return raw_inline('<div class="chart">' .. text_of(lookup(scope, path)) .. "</div>")
  end
  local svg
  if mode == "template" then
    svg = "{{= " .. path .. " | typst_str =}}"
  else
    svg = typst_string(text_of(lookup(scope, path)))
  end
  return raw_inline("#image(bytes(" .. svg .. '), format: "svg", width: ' .. width .. ");")
end

-- Structure ---------------------------------------------------------------------------------
local expand -- forward declaration

local ALIGN_HTML = { AlignRight = "right", AlignCenter = "center", AlignLeft = "left" }
local ALIGN_TYPST = { AlignRight = "right", AlignCenter = "center", AlignLeft = "left" }

local function cell_text(cell, scope)
  return write(expand(cell.contents:clone(), scope))
end

-- A table as raw output: the header, then the rows (strings already rendered per row).
local function table_raw(tbl, rows_text)
  local aligns = {}
  for i, spec in ipairs(tbl.colspecs) do
    aligns[i] = spec[1]
  end
  local head = {}
  for i, cell in ipairs(tbl.head.rows[1].cells) do
    head[i] = cell_text(cell, nil)
  end
  if is_html() then
    local h = {}
    for i, t in ipairs(head) do
      local a = ALIGN_HTML[aligns[i]]
      h[i] = "<th" .. (a and (' style="text-align:' .. a .. '"') or "") .. ">" .. t .. "</th>"
    end
    return '<table class="report-table">\n<thead><tr>' .. table.concat(h) .. "</tr></thead>\n"
      .. "<tbody>\n" .. rows_text .. "</tbody>\n</table>"
  end
  local a, h = {}, {}
  for i, t in ipairs(head) do
    a[i] = ALIGN_TYPST[aligns[i]] or "left"
    h[i] = "[" .. t .. "]"
  end
  local cols = { "1fr" } -- the first column takes the rest of the line
  for i = 2, #head do
    cols[i] = "auto"
  end
  return "#table(\n  columns: (" .. table.concat(cols, ", ") .. "),\n  align: (" .. table.concat(a, ", ") .. ",),\n"
    .. "  table.header(" .. table.concat(h, ", ") .. "),\n" .. rows_text .. ")"
end

local function row_text(tbl, row, scope)
  local cells = {}
  for i, cell in ipairs(row.cells) do
    cells[i] = cell_text(cell, scope)
  end
  if is_html() then
    local out = {}
    for i, t in ipairs(cells) do
      local a = ALIGN_HTML[tbl.colspecs[i][1]]
      out[i] = "<td" .. (a and (' style="text-align:' .. a .. '"') or "") .. ">" .. t .. "</td>"
    end
    return "<tr>" .. table.concat(out) .. "</tr>\n"
  end
  local out = {}
  for i, t in ipairs(cells) do
    out[i] = "[" .. t .. "]"
  end
  return "  " .. table.concat(out, ", ") .. ",\n"
end

local function loop_rows(div, scope)
  local var, path = parse_each(div.attributes.each)
  local tbl = nil
  for _, b in ipairs(div.content) do
    if b.t == "Table" then
      tbl = b
    end
  end
  if not tbl or #tbl.bodies ~= 1 or #tbl.bodies[1].body ~= 1 then
    error("report.lua: .rows needs a table with exactly one body row")
  end
  local row = tbl.bodies[1].body[1]
  local rows_text
  if mode == "template" then
    rows_text = "{%= for " .. var .. " in " .. path .. " =%}\n" .. row_text(tbl, row, scope)
      .. "{%= endfor =%}\n"
  else
    local parts = {}
    for _, item in ipairs(lookup(scope, path) or {}) do
      parts[#parts + 1] = row_text(tbl, row, { vars = { [var] = item }, parent = scope })
    end
    rows_text = table.concat(parts)
  end
  return { raw_block(table_raw(tbl, rows_text)) }
end

local function list_item_text(item_blocks, scope)
  if is_html() then
    return "<li>" .. write(expand(item_blocks:clone(), scope)) .. "</li>\n"
  end
  return "- " .. write(expand(item_blocks:clone(), scope)) .. "\n"
end

local function loop(div, scope)
  local var, path = parse_each(div.attributes.each)
  local content = div.content
  local single_list = #content == 1 and content[1].t == "BulletList" and #content[1].content == 1
  if single_list then
    local item = content[1].content[1]
    local body
    if mode == "template" then
      body = "{%= for " .. var .. " in " .. path .. " =%}\n" .. list_item_text(item, scope)
        .. "{%= endfor =%}\n"
    else
      local parts = {}
      for _, v in ipairs(lookup(scope, path) or {}) do
        parts[#parts + 1] = list_item_text(item, { vars = { [var] = v }, parent = scope })
      end
      body = table.concat(parts)
    end
    if is_html() then
      return { raw_block('<ul class="' .. table.concat(div.classes, " ") .. '">\n' .. body .. "</ul>") }
    end
    return { raw_block(body) }
  end
  if mode == "template" then
    local out = pandoc.Blocks({ raw_block("{%= for " .. var .. " in " .. path .. " =%}") })
    out:extend(expand(content, scope))
    out:insert(raw_block("{%= endfor =%}"))
    return out
  end
  local out = pandoc.Blocks({})
  for _, v in ipairs(lookup(scope, path) or {}) do
    out:extend(expand(content:clone(), { vars = { [var] = v }, parent = scope }))
  end
  return out
end

local function conditional(div, scope)
  local negate, path = parse_test(div.attributes.test or "")
  if not path then
    error("report.lua: bad test=" .. tostring(div.attributes.test))
  end
  if mode == "template" then
    local out = pandoc.Blocks({ raw_block("{%= if " .. (negate and "not " or "") .. path .. " =%}") })
    out:extend(expand(div.content, scope))
    out:insert(raw_block("{%= endif =%}"))
    return out
  end
  local keep = truthy(lookup(scope, path))
  if negate then
    keep = not keep
  end
  if keep then
    return expand(div.content, scope)
  end
  return pandoc.Blocks({})
end

-- A paragraph holding only a chart: the chart as a block (HTML: no <div> inside a <p>).
local function chart_para(para)
  local spans = {}
  for _, el in ipairs(para.content) do
    if el.t == "Span" and el.classes:includes("chart") then
      spans[#spans + 1] = el
    elseif el.t ~= "Space" and el.t ~= "SoftBreak" then
      return nil
    end
  end
  if #spans ~= 1 then
    return nil
  end
  return spans[1]
end

-- Attributes named `typst:...` are pandoc's typst properties (e.g. `typst:text:size`): for
-- the PDF only, dropped from HTML (where they would be invalid attributes).
local function drop_typst_attributes(div)
  local keep = {}
  for k, v in pairs(div.attributes) do
    if not k:match("^typst:") then
      keep[k] = v
    end
  end
  div.attributes = keep
end

expand = function(blocks, scope)
  return pandoc.Blocks(blocks):walk({
    traverse = "topdown",
    Div = function(div)
      if div.classes:includes("if") then
        return conditional(div, scope), false
      elseif div.classes:includes("for") then
        return loop(div, scope), false
      elseif div.classes:includes("rows") then
        return loop_rows(div, scope), false
      end
      if is_html() then
        drop_typst_attributes(div)
        div.content = expand(div.content, scope)
        return div, false
      end
      return nil
    end,
    Para = function(para)
      local span = chart_para(para)
      if span then
        local inline = chart_inline(pandoc.utils.stringify(span.content), span.attributes.width, scope)
        return raw_block(inline.text), false
      end
      return nil
    end,
    Span = function(span)
      if span.classes:includes("v") then
        return value_inline(pandoc.utils.stringify(span.content), scope), false
      elseif span.classes:includes("chart") then
        return chart_inline(pandoc.utils.stringify(span.content), span.attributes.width, scope),
          false
      end
      return nil
    end,
  })
end

local function meta_string(v)
  if v == nil then
    return nil
  end
  return pandoc.utils.stringify(v)
end

function Pandoc(doc)
  local meta = doc.meta
  local path = meta_string(meta["report-data"])
  if (path == nil or path == "") and meta.params then
    path = meta_string(meta.params.data)
  end
  if meta_string(meta["report-mode"]) == "template" then
    mode = "template"
    if not (is_html() or is_typst()) then
      error("report.lua: template mode supports html and typst, not " .. FORMAT)
    end
  elseif path and path ~= "" then
    local f = assert(io.open(path, "r"))
    data = pandoc.json.decode(f:read("a"), false)
    f:close()
  else
    error("report.lua: no report data: set params.data or -M report-data=FILE "
      .. "(or -M report-mode=template)")
  end
  local root = { vars = {}, parent = nil }
  doc.blocks = expand(doc.blocks, root)
  -- The page title (HTML <title>) from the same data.
  if meta.pagetitle then
    meta.pagetitle = pandoc.Inlines(pandoc.Inlines(meta.pagetitle):walk({
      Span = function(span)
        if span.classes:includes("v") then
          local p = pandoc.utils.stringify(span.content)
          if mode == "template" then
            return raw_inline("{{= " .. p .. " =}}")
          end
          return pandoc.Str(text_of(lookup(root, p)))
        end
      end,
    }))
  end
  doc.meta = meta
  return doc
end
