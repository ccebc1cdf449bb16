// "Find Circuit": asks how (EAP-IG, EAP or EAP-IG over activations) and how many edges, then runs the current
// dataset as "Attribution Patch Current File" does, with edge attribution and faithfulness (atp circuit in the
// editor); the panel opens on the circuit view.
import * as vscode from 'vscode';
import { requireWorkspaceTrust } from './workspaceTrust';
import { type CircuitMethod, CIRCUIT_METHODS } from '../shared/circuit';
import type { CircuitRequest } from '../shared/workerProtocol';
import { COMMANDS } from './ids';

const METHODS: Array<vscode.QuickPickItem & { method: CircuitMethod }> = [
  {
    label: 'EAP-IG',
    description: '5 integrated-gradient steps (recommended)',
    detail: 'Hanna et al.: gradients averaged between the corrupted and the clean input.',
    method: 'eap-ig',
  },
  { label: 'EAP', description: 'one gradient, fastest', detail: "Syed et al.; EAP-IG's EAP: one gradient at the clean run.", method: 'eap' },
  {
    label: 'EAP-IG over activations',
    description: 'slower',
    detail: "EAP-IG's clean-corrupted method: each sender interpolated in turn, in the clean run.",
    method: 'eap-ig-activations',
  },
];

/** A circuit size as typed: a whole number of edges ≥ 1, or why not. */
export function parseEdgeCount(text: string): number | string {
  const trimmed = text.trim();
  if (!/^\d+$/.test(trimmed) || Number(trimmed) < 1) return 'a whole number of edges, at least 1';
  return Number(trimmed);
}

export function registerFindCircuit(): vscode.Disposable {
  return vscode.commands.registerCommand(COMMANDS.findCircuit, async (uri?: vscode.Uri) => {
    if (!requireWorkspaceTrust('Find Circuit')) return;
    const picked = await vscode.window.showQuickPick(METHODS, { title: 'Find Circuit: edge attribution method', placeHolder: 'How to score the edges' });
    if (!picked) return;
    const edges = await vscode.window.showInputBox({
      title: 'Find Circuit: edges to keep',
      prompt: 'The circuit keeps the edges with the largest |score|; its faithfulness is measured, with a curve over sizes.',
      value: '20',
      validateInput: (text) => {
        const parsed = parseEdgeCount(text);
        return typeof parsed === 'string' ? parsed : undefined;
      },
    });
    if (edges === undefined) return;
    const circuit: CircuitRequest['circuit'] = {
      method: picked.method,
      steps: CIRCUIT_METHODS[picked.method].oneGradient ? 1 : 5,
      selection: { rule: 'top-n', edges: parseEdgeCount(edges) as number },
    };
    await vscode.commands.executeCommand(COMMANDS.patchCurrentFile, uri, { circuit });
  });
}
