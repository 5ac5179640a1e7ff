// The light entry of the commands that only read or write this computer's DeskGrid state
// (`deskgrid join`, `peers`, `--version`, and the join code for `nodes` and `doctor`): the data
// home, the saved settings, the cluster id a join code gives, the version. Nothing here may lead
// to the Cluster, SQLite or the bundler. The same names are also on the engine's index.

export { APP_NAME, defaultDataHome, newRunFolder } from '../paths.js';
export {
  canonicalPeer,
  loadSettings,
  resolveJoinCode,
  savedJobChoices,
  saveSettings,
  writeAtomically,
  type ResolvedJoinCode,
  type Settings,
  type SettingsPatch,
} from '../settings.js';
export { clusterId } from '../identity/cluster-key.js';
export { readPackageVersion } from '../version.js';
