// The quick fix of a "this file looks like another built-in model's task" warning: "Use the built-in IOI model"
// (or the TinySQL one) selects that model, through the Select Model command, so the sidebar and status bar follow.
import * as vscode from 'vscode';
import { findBuiltInModel } from '../lib/model/presets';
import { modelToUse } from './diagnostics';
import { COMMANDS } from '../commands/ids';

export class UseBuiltInModelFix implements vscode.CodeActionProvider {
  static readonly kinds = [vscode.CodeActionKind.QuickFix];

  provideCodeActions(_document: vscode.TextDocument, _range: vscode.Range, context: vscode.CodeActionContext): vscode.CodeAction[] {
    return context.diagnostics.flatMap((diagnostic) => {
      const model = findBuiltInModel(modelToUse(diagnostic) ?? '');
      if (!model) return [];
      const action = new vscode.CodeAction(`Use the built-in ${model.task} model`, vscode.CodeActionKind.QuickFix);
      action.diagnostics = [diagnostic];
      action.isPreferred = true;
      action.command = { command: COMMANDS.selectModel, title: action.title, arguments: [model.name] };
      return [action];
    });
  }
}
