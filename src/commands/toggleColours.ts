// "Attribution Patching: Toggle Inline Colours": hides or shows the token colours (results stay loaded).
import * as vscode from 'vscode';
import type { Services } from '../services/services';
import { COMMANDS } from './ids';

export function registerToggleColours(services: Services): vscode.Disposable {
  return vscode.commands.registerCommand(COMMANDS.toggleColours, () => {
    services.state.setColoursEnabled(!services.state.coloursEnabled);
  });
}
