// Hover on a coloured token: what the Result says about that token position, read from the Result as it is
// (nothing recomputed): the token and its id, the position, the value shown by the colours, a per-layer breakdown,
// the top heads at that position, and the clean vs corrupted token there.
import * as vscode from 'vscode';
import type { ExampleResult, Result } from '../shared/result';
import { formatValue } from '../shared/colorScale';
import { selectionLabel, type ValueSelection } from '../shared/panelProtocol';
import { exactnessLabel, layerBreakdown, methodAt, topHeadsAt, valueAt } from '../shared/resultViews';
import { methodsOf } from '../shared/resultMethods';
import type { ResultState } from '../services/resultState';
import { escapeMarkdown } from './markdown';
import { modelLabel } from '../shared/modelNames';
import { tokenAt, tokenLayout } from './tokenLayout';

const TOP_HEADS = 5;

/** A token's text as code, with whitespace made visible (a leading space is part of GPT-2 tokens). */
function showToken(text: string): string {
  const visible = JSON.stringify(text).slice(1, -1).replace(/`/g, 'ˋ');
  return `\`"${visible}"\``;
}

export function hoverMarkdown(result: Result, exampleIndex: number, pos: number, selection: ValueSelection): vscode.MarkdownString {
  const example: ExampleResult = result.examples[exampleIndex];
  const clean = example.tokens[pos];
  const corrupted = example.corruptedTokens[pos];
  const differs = example.cleanIds[pos] !== example.corruptedIds[pos];
  const md = new vscode.MarkdownString(undefined, true);
  md.appendMarkdown(
    `**Attribution patching** · ${showToken(clean.text)} id ${clean.id} · position ${pos} of ${example.tokens.length} · example on line ${example.line}\n\n`,
  );
  const shown = methodAt(result, example, pos, selection);
  const what = selection.kind === 'token' ? 'token effect (patching this token into the corrupted prompt)' : selectionLabel(selection);
  md.appendMarkdown(`${what}: **${formatValue(valueAt(example, pos, selection))}** · ${exactnessLabel(shown.exact, shown.method)}`);
  if (selection.kind !== 'token' && example.tokenScores) {
    const token = methodAt(result, example, pos, { kind: 'token' });
    md.appendMarkdown(` · token effect ${formatValue(valueAt(example, pos, { kind: 'token' }))} (${exactnessLabel(token.exact)})`);
  }
  md.appendMarkdown('\n\n');
  if (example.tokenScores && differs) {
    md.appendMarkdown(`all differing tokens of this example patched together (its clean run): ${formatValue(example.tokenScores.joint)} · exact\n\n`);
  }
  md.appendMarkdown(
    `clean ${showToken(clean.text)} (${clean.id}) vs corrupted ${showToken(corrupted?.text ?? '')} (${corrupted?.id ?? '—'})` +
      (differs ? ' · **differs**' : ' · same token') +
      '\n\n',
  );
  const arrays = methodsOf(result).attributions;
  md.appendMarkdown(
    `per layer at this position (${arrays === 'exact' ? 'exact: each patched alone' : 'AtP estimates: each a linear estimate of patching that component alone'}):\n\n`,
  );
  // attn_out is the sum of the heads' hook_z values (the output projection is linear), so the table names the head
  // that carries most of it instead of repeating that sum.
  md.appendMarkdown('| layer | resid_pre | attn_out | mlp_out | top head |\n|---:|---:|---:|---:|---:|\n');
  for (const row of layerBreakdown(example, pos)) {
    const top = row.topHead.value === 0 ? '0' : `H${row.topHead.head} ${formatValue(row.topHead.value)}`;
    md.appendMarkdown(`| L${row.layer} | ${formatValue(row.residPre)} | ${formatValue(row.attnOut)} | ${formatValue(row.mlpOut)} | ${top} |\n`);
  }
  const heads = topHeadsAt(example, pos, TOP_HEADS).map((h) => `L${h.layer}H${h.head} ${formatValue(h.value)}`);
  md.appendMarkdown(`\ntop heads here: ${heads.join(' · ')}\n\n`);
  const checked = (result.checks?.items ?? []).filter((item) => item.position === pos && item.hook !== 'z');
  for (const item of checked) {
    md.appendMarkdown(
      `checked (summed over examples): L${item.layer} ${item.hook} here: AtP ${formatValue(item.attribution)} · exact ${formatValue(item.exact)}\n\n`,
    );
  }
  md.appendMarkdown(
    `*Normalised logit-difference attribution (1 = clean, 0 = corrupted); model ${escapeMarkdown(modelLabel(result.model.source))} on ${escapeMarkdown(result.device)}.*`,
  );
  return md;
}

export class TokenHoverProvider implements vscode.HoverProvider {
  constructor(private readonly state: ResultState) {}

  provideHover(document: vscode.TextDocument, position: vscode.Position): vscode.Hover | undefined {
    const entry = this.state.get(document.uri);
    if (!entry || entry.stale) return undefined;
    const hit = tokenAt(tokenLayout(document, entry.result), position);
    if (!hit) return undefined;
    return new vscode.Hover(hoverMarkdown(entry.result, hit.example, hit.pos, this.state.selection), hit.range);
  }
}
