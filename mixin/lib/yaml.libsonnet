// A YAML writer for rule files that people read: keys in the order Prometheus documents
// them (not alphabetical), multi-line expressions as literal blocks, long one-line texts
// folded at spaces, quotes only where YAML needs them.
local order = [
  'apiVersion',
  'kind',
  'metadata',
  'spec',
  'name',
  'labels',
  'interval',
  'rules',
  'record',
  'alert',
  'expr',
  'for',
  'keep_firing_for',
  'annotations',
];
// A rule's labels come after `for`, a group's name before its rules; other keys last, in
// alphabetical order. (A character, not a formatted number: std.format is slow.)
local rank(k, inRule) =
  local i = std.find(k, order);
  local r = if inRule && k == 'labels' then 2 * std.find('for', order)[0] + 1
  else if i == [] then 70 else 2 * i[0];
  std.char(48 + r) + k;
// Plain scalars: characters allowed anywhere, and those that may not start one. Sets, as
// std.member on a string is slow in jsonnet 0.18.
local letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
local plainChars = { [c]: true for c in std.stringChars(letters + "0123456789_-./:$ ,'()") };
local notFirst = { [c]: true for c in std.stringChars("0123456789_-./:$ ,'()") };
local reserved = ['true', 'false', 'null', 'yes', 'no', 'on', 'off', 'y', 'n', '~'];
// Substring tests without std.findSubstr and std.member, which walk strings slowly in
// jsonnet 0.18 (the writer would take seconds).
local contains(s, sub) = std.length(std.strReplace(s, sub, '')) != std.length(s);
local multiLine(s) = std.length(std.split(s, '\n')) > 1;
local isPlain(s) =
  std.length(s) > 0
  && std.objectHas(plainChars, s[0]) && !std.objectHas(notFirst, s[0])
  && std.length([c for c in std.stringChars(s) if !std.objectHas(plainChars, c)]) == 0
  && !std.member(reserved, std.asciiLower(s))
  && !contains(s, ': ') && !contains(s, ' #')
  && !std.endsWith(s, ' ') && !std.endsWith(s, ':');
local quoted(s) = "'" + std.strReplace(s, "'", "''") + "'";
local spaces(n) = std.repeat(' ', n);

// Greedy wrap of words into lines of at most `width` characters (a longer word gets a line).
local wrap(words, width) = std.foldl(
  function(lines, w)
    if lines == [] then [w]
    else if std.length(lines[std.length(lines) - 1]) + 1 + std.length(w) <= width
    then lines[:std.length(lines) - 1] + [lines[std.length(lines) - 1] + ' ' + w]
    else lines + [w],
  words,
  [],
);

local scalar(s, indent, fold) =
  if std.type(s) != 'string' then std.manifestJson(s)
  else if multiLine(s) then
    local body = if std.endsWith(s, '\n') then std.substr(s, 0, std.length(s) - 1) else s;
    (if std.endsWith(s, '\n') then '|' else '|-') + std.join('', [
      '\n' + (if l == '' then '' else spaces(indent) + l)
      for l in std.split(body, '\n')
    ])
  else if isPlain(s) then s
  // Folded: a one-line text joined back with single spaces, so only one without runs of
  // spaces or spaces at its ends.
  else if fold && std.length(s) > 80 && !contains(s, '\t')
          && !contains(s, '  ') && std.stripChars(s, ' ') == s then
    '>-' + std.join('', ['\n' + spaces(indent) + l for l in wrap(std.split(s, ' '), 90)])
  else quoted(s);

local value(v, indent, inRule, key='') =
  if std.type(v) == 'object' then
    if std.length(v) == 0 then ' {}'
    else
      local isRule = std.objectHas(v, 'expr');
      std.join('', [
        '\n' + spaces(indent) + k + ':' + value(v[k], indent + 2, isRule, k)
        for k in std.sort(std.objectFields(v), function(k) rank(k, isRule))
      ])
  else if std.type(v) == 'array' then
    if std.length(v) == 0 then ' []'
    else std.join('', [
      '\n' + spaces(indent) + '-'
      + (if std.type(x) == 'object' && std.length(x) > 0
         then local v = value(x, indent + 2, false); std.substr(v, indent + 2, std.length(v))
         else value(x, indent + 2, false))
      for x in v
    ])
  else ' ' + scalar(v, indent, key != 'expr');

{
  // The YAML document for `v` (an object), with a final newline.
  manifest(v):: local text = value(v, 0, false); std.substr(text, 1, std.length(text)) + '\n',
}
