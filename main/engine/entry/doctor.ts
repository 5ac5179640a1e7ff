// The light entry of `deskgrid nodes` and `deskgrid doctor`: the LAN survey, the diagnosis and
// the few facts about this computer's network they print. These commands must answer in a
// moment, so nothing here may lead to the Cluster, SQLite or the bundler (a test walks the import
// graph to keep it so). The same names are also on the engine's index for everyone else.

export { discoveryAllowed } from '../discovery/discovery-switch.js';
export { lanInterfaces, type LanInterface } from '../discovery/interfaces.js';
export { shortNodeId } from '../identity/node-identity.js';
export {
  surveyLan,
  type NodeCheck,
  type ShownState,
  type SurveyedNode,
  type SurveyOptions,
} from '../doctor/lan-survey.js';
export { diagnose, DEFAULT_DOCTOR_WAIT_S, type DiagnoseOptions, type Finding } from '../doctor/diagnose.js';
