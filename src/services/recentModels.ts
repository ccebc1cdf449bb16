// Models used recently (folders or hub ids), newest first, kept across sessions in global state.
import type * as vscode from 'vscode';

const KEY = 'attributionPatching.recentModels';
const LIMIT = 8;

export class RecentModels {
  constructor(private readonly memento: vscode.Memento) {}

  list(): string[] {
    return this.memento.get<string[]>(KEY, []);
  }

  async add(model: string): Promise<void> {
    if (!model) return;
    await this.memento.update(KEY, [model, ...this.list().filter((m) => m !== model)].slice(0, LIMIT));
  }
}
