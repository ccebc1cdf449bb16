// Text from Result files (model.source, device, dataset paths) is shown in Markdown hovers and tooltips, and
// Result files are shared and committed: whatever they hold must show as the text it is, never as a link, an
// image, a heading, HTML or a theme icon. No 'vscode' import, so the escaping is unit-tested under Node.

/** Line breaks would end a paragraph or a table row; a value is one line. */
const oneLine = (text: string) => text.replace(/\r\n|[\r\n\u2028\u2029]/g, ' ');

/**
 * Text as literal Markdown: every ASCII punctuation character backslash-escaped (CommonMark escapes exactly
 * those, and `$` also stops VS Code's `$(icon)` syntax), line breaks as spaces.
 */
export function escapeMarkdown(text: string): string {
  return oneLine(text).replace(/[!-/:-@[-`{-~]/g, (char) => `\\${char}`);
}

/**
 * Text as a Markdown code span: fenced with more backticks than any run inside it, padded with a space when it
 * starts or ends with a backtick or a space (which the fence would otherwise take or strip).
 */
export function markdownCode(text: string): string {
  const value = oneLine(text);
  let longest = 0;
  for (const run of value.match(/`+/g) ?? []) longest = Math.max(longest, run.length);
  const fence = '`'.repeat(longest + 1);
  const pad = value === '' || /^[` ]|[` ]$/.test(value) ? ' ' : '';
  return `${fence}${pad}${value}${pad}${fence}`;
}

/** Text for a status bar item or other label with `$(icon)` syntax: shown as written, not as an icon. */
export function escapeIcons(text: string): string {
  return oneLine(text).replace(/\$\(/g, '\\$(');
}
