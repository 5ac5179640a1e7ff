import { mount } from 'svelte';
import App from './App.svelte';
import { connectApi } from './lib/api.js';
import { AppState } from './lib/app-state.svelte.js';
import './app.css';

const target = document.getElementById('app');
if (target === null) throw new Error('index.html has no #app element');
mount(App, { target, props: { app: new AppState(connectApi()) } });
