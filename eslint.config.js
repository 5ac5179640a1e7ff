// Lint rules, including the layer rules that keep the architecture honest:
//   shared/          imports nothing of ours and no Node, DOM or Electron APIs
//   worker-service/  imports shared/ only
//   main/engine/     imports shared/ (and starts worker-service/ processes), never electron
//   main/cli/        imports shared/ and the engine's public face only (main/engine/index.ts and
//                    the light entry modules main/engine/entry/*.ts), never its internals
//   main/app/        the Electron shell: imports shared/, electron and the engine's public face
//   renderer/        imports shared/ only (the engine is reached through shared/ui-api.ts)
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';
import svelte from 'eslint-plugin-svelte';

const ours = (...layers) =>
  layers.map((layer) => ({ group: [`**/${layer}/**`], message: `do not import ${layer}/ here` }));
// The engine's public face: its index and the light entries beside it; any other engine module
// is an internal the CLI and the app must not reach (main/engine/index.ts says which is which).
const engineFace = {
  regex: '(^|/)engine/(?!index\\.js$|entry/[a-z-]+\\.js$)',
  message: "use the engine's public face: main/engine/index.ts or a light main/engine/entry/ module",
};
const noElectron = { group: ['electron'], message: 'only main/app and the preload may import electron' };

export default tseslint.config(
  // build/types holds declarations read by shared/tsconfig.json only, outside the project service.
  { ignores: ['dist/', 'node_modules/', 'test-output/', 'build/types/'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true },
      ],
      '@typescript-eslint/no-unnecessary-condition': 'off',
      'no-console': 'error',
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  ...svelte.configs.recommended,
  {
    // Components are typechecked by svelte-check; here they get the Svelte rules and the syntax ones.
    files: ['**/*.svelte', '**/*.svelte.ts'],
    languageOptions: { parserOptions: { parser: tseslint.parser, extraFileExtensions: ['.svelte'] } },
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    files: ['renderer/**/*.ts', 'renderer/**/*.svelte'],
    ignores: ['renderer/vite.config.ts'],
    languageOptions: {
      globals: { ...globals.browser },
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...ours('main', 'worker-service'),
            {
              group: ['node:*', 'electron'],
              message: 'the renderer runs in a browser: no Node or Electron APIs',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['shared/**/*.ts'],
    languageOptions: { globals: {} },
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...ours('main', 'worker-service', 'renderer'),
            { group: ['node:*', 'electron'], message: 'shared/ runs everywhere: no Node or Electron APIs' },
          ],
        },
      ],
    },
  },
  {
    files: ['worker-service/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [...ours('main', 'renderer'), noElectron] }] },
  },
  {
    files: ['main/engine/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...ours('worker-service', 'renderer', 'cli', 'app'),
            { group: ['electron'], message: 'the engine runs in plain Node: no electron imports' },
          ],
        },
      ],
    },
  },
  {
    files: ['main/cli/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [...ours('worker-service', 'renderer', 'app'), engineFace, noElectron] },
      ],
    },
  },
  {
    files: ['main/app/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [...ours('worker-service', 'renderer', 'cli'), engineFace] },
      ],
    },
  },
  {
    // Computations and fixtures print on purpose; the CLI's output is its interface.
    files: ['test/**', 'bench/**', 'soak/**', 'examples/**', 'main/cli/**/*.ts'],
    rules: { 'no-console': 'off' },
  },
  {
    // Asymmetric matchers (expect.stringMatching and friends) are typed any.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-unsafe-assignment': 'off' },
  },
);
