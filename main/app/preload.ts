// The window's preload (bundled to CommonJS by build/bundle-preload.mjs: a sandboxed preload
// cannot import modules). It exposes window.deskgrid and nothing else.

import { contextBridge, ipcRenderer } from 'electron';
import { exposeDeskGridApi } from './preload-api.js';

exposeDeskGridApi(contextBridge, ipcRenderer);
