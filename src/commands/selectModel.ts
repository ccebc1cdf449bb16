// "Attribution Patching: Select Model": a model folder (Hugging Face layout), a Hugging Face repo id, a preset of
// the seed's models, or one of the built-in models shipped in the extension (tinysql-demo, the default: an empty
// setting; ioi-demo: the setting names it). Recent models come first.
import * as vscode from 'vscode';
import { BUILT_IN_MODELS, findBuiltInModel, MODEL_PRESETS } from '../lib/model/presets';
import type { Services } from '../services/services';
import { readSettings, updateSetting } from '../services/settings';
import { COMMANDS } from './ids';

const HUB_ID = /^[\w.-]+(\/[\w.-]+)?(@[\w./-]+)?$/;

type Item = vscode.QuickPickItem & { action?: 'folder' | 'hub' | 'builtIn'; model?: string };

/** The setting value that selects a built-in model: empty for the default (the first), else its name. */
export function builtInSettingValue(name: string): string | undefined {
  return name === BUILT_IN_MODELS[0].name ? undefined : name;
}

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
      ...BUILT_IN_MODELS.map((m): Item => ({
        label: `$(package) Built-in ${m.task} demo model`,
        description: (findBuiltInModel(current)?.name ?? (current ? '' : BUILT_IN_MODELS[0].name)) === m.name ? `${m.name} · current` : m.name,
        detail: m.description,
        action: 'builtIn',
        model: m.name,
      })),
      ...(recent.length > 0 ? [separator('recent')] : []),
      ...recent.map((name) => ({ label: name, description: name === current ? 'current' : '', model: name })),
      separator('presets (downloaded from the Hugging Face hub on first use)'),
      ...MODEL_PRESETS.map((p) => ({ label: p.name, description: p.repo, detail: p.description, model: p.name })),
    ];
    const picked = await vscode.window.showQuickPick(items, {
      title: 'Attribution Patching: model',
      placeHolder: current || 'Built-in demo model',
      matchOnDescription: true,
    });
    if (!picked) return;
    if (picked.action === 'builtIn') {
      await updateSetting('model', builtInSettingValue(picked.model ?? ''));
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
  const builtIn = findBuiltInModel(model);
  if (builtIn) {
    // Built-in models are always listed; they need no place among the recent ones.
    await updateSetting('model', builtInSettingValue(builtIn.name));
    return void services.sidebar.refresh();
  }
  await updateSetting('model', model);
  await services.recentModels.add(model);
  void services.sidebar.refresh();
}

export function registerSelectModel(services: Services): vscode.Disposable {
  return vscode.commands.registerCommand(COMMANDS.selectModel, (model?: string) => chooseModel(services, model));
}
