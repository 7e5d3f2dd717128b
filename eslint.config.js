// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

/** Layers that may not be reached from a given folder (DESIGN.md §2, import direction). */
const nodeBuiltins = {
  group: ['node:*'],
  message: 'protocol and client core run in browsers too.',
};
const layer = (name) => ({
  group: [`**/${name}/*`, `**/${name}`],
  message: `this layer may not import ${name}/ (DESIGN.md §2).`,
});
/** @param {string[]} names */
const layers = (...names) => names.map(layer);
/** Nothing imports cli, bench or examples; each src folder adds its own forbidden layers. */
const restrictImports = (files, patterns) => [
  {
    files: [files],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [...patterns, ...layers('cli', 'bench', 'examples')] },
      ],
    },
  },
];

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'coverage/**',
      'bench/results/**',
      'test-artifacts/**',
      '.scratch/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['eslint.config.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
  },
  ...restrictImports('src/protocol/**', [
    nodeBuiltins,
    ...layers('broker', 'relay', 'gateway', 'client', 'publisher', 'auth'),
  ]),
  ...restrictImports('src/broker/**', layers('gateway', 'client', 'publisher')),
  ...restrictImports('src/relay/**', layers('gateway', 'broker', 'publisher')),
  ...restrictImports('src/gateway/**', layers('broker', 'relay')),
  ...restrictImports('src/client/**', [
    nodeBuiltins,
    ...layers('broker', 'relay', 'gateway', 'publisher', 'auth'),
  ]),
  ...restrictImports('src/publisher/**', layers('broker', 'relay', 'gateway')),
  ...restrictImports('src/auth/**', layers('broker', 'relay', 'gateway', 'client', 'publisher')),
  ...restrictImports('src/*.ts', []),
  {
    files: ['test/**', 'bench/**'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
  {
    // The quiz's page script runs in browsers, as plain JavaScript.
    files: ['examples/quiz/public/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: {
        window: 'readonly',
        document: 'readonly',
        location: 'readonly',
        fetch: 'readonly',
        console: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setTimeout: 'readonly',
        URLSearchParams: 'readonly',
        Perigee: 'readonly',
      },
    },
  },
  prettier,
);
