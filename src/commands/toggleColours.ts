// "Attribution Patching: Toggle Inline Colours": hides or shows the token colours (results stay loaded).
import * as vscode from 'vscode';
import type { Services } from '../services/services';

export function registerToggleColours(services: Services): vscode.Disposable {
  return vscode.commands.registerCommand('attributionPatching.toggleColours', () => {
    services.state.setColoursEnabled(!services.state.coloursEnabled);
  });
}
