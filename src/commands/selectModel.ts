// "Attribution Patching: Select Model": a model folder (Hugging Face layout), a Hugging Face repo id, a preset of
// the seed's models, or the built-in demo model (the default: an empty setting). Recent models come first.
import * as vscode from 'vscode';
import { MODEL_PRESETS } from '../engine/model/presets';
import type { Services } from '../services/services';
import { readSettings, updateSetting } from '../services/settings';
import { COMMANDS } from './ids';

const HUB_ID = /^[\w.-]+(\/[\w.-]+)?(@[\w./-]+)?$/;

type Item = vscode.QuickPickItem & { action?: 'folder' | 'hub' | 'builtIn'; model?: string };

/** Asks which model to use (unless `preset` names one) and saves it in the settings and the recent list. */
async function chooseModel(services: Services, preset?: string): Promise<void> {
  let model = typeof preset === 'string' ? preset : undefined;
  if (!model) {
    const current = readSettings().model;
    const recent = services.recentModels.list();
    const separator = (label: string): Item => ({ label, kind: vscode.QuickPickItemKind.Separator });
    const items: Item[] = [
      { label: '$(folder-opened) Choose a model folder…', detail: 'config.json, *.safetensors, tokenizer.json (Hugging Face layout)', action: 'folder' },
      { label: '$(cloud) Enter a Hugging Face model id…', detail: 'e.g. openai-community/gpt2, or owner/name@revision', action: 'hub' },
      { label: '$(package) Built-in demo model', description: current ? '' : 'current', detail: 'tinysql-demo: 4 layers × 4 heads, trained by the project on TinySQL (3 MB, no download)', action: 'builtIn' },
      ...(recent.length > 0 ? [separator('recent')] : []),
      ...recent.map((name) => ({ label: name, description: name === current ? 'current' : '', model: name })),
      separator('presets (downloaded from the Hugging Face hub on first use)'),
      ...MODEL_PRESETS.map((p) => ({ label: p.name, description: p.repo, detail: p.description, model: p.name })),
    ];
    const picked = await vscode.window.showQuickPick(items, { title: 'Attribution Patching: model', placeHolder: current || 'Built-in demo model', matchOnDescription: true });
    if (!picked) return;
    if (picked.action === 'builtIn') {
      await updateSetting('model', undefined);
      return void services.sidebar.refresh();
    }
    if (picked.model) model = picked.model;
    else if (picked.action === 'folder') {
      const folders = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, canSelectMany: false, openLabel: 'Use this model' });
      model = folders?.[0]?.fsPath;
    } else {
      const typed = await vscode.window.showInputBox({
        title: 'Hugging Face model id',
        placeHolder: 'owner/name',
        validateInput: (text) => (HUB_ID.test(text.trim()) ? undefined : 'A repo id looks like gpt2, owner/name or owner/name@revision'),
      });
      model = typed?.trim();
    }
  }
  if (!model) return;
  await updateSetting('model', model);
  await services.recentModels.add(model);
  void services.sidebar.refresh();
}

export function registerSelectModel(services: Services): vscode.Disposable {
  return vscode.commands.registerCommand(COMMANDS.selectModel, (model?: string) => chooseModel(services, model));
}
