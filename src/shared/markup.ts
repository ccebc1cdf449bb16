// Text inside HTML, SVG and XML documents (the reports, `atp compare --svg`, JUnit): one escaper for all of them.
// Pure, no DOM: the webview's Compare view draws the same SVG strings.

/** Characters an XML 1.0 document cannot hold, even escaped: C0 controls but tab, LF and CR; lone surrogates; U+FFFE, U+FFFF. */
const NOT_XML = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * Text as character data or a quoted attribute value: & < > " ' as entities; characters XML 1.0 cannot hold replaced
 * by U+FFFD (not dropped: the text still shows that a character was there).
 */
export const escapeXml = (text: string): string => text.replace(NOT_XML, '\uFFFD').replace(/[&<>"']/g, (c) => ENTITIES[c]);

/** escapeXml for documents whose attributes are all double-quoted (JUnit): ' stays as it is. */
export const escapeXmlKeepingApostrophes = (text: string): string => text.replace(NOT_XML, '\uFFFD').replace(/[&<>"]/g, (c) => ENTITIES[c]);
