// Svelte compiles the components' TypeScript itself (type annotations only, no preprocessing).
export default {
  compilerOptions: { runes: true },
};
