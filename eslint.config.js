import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'runs/', '.mtl-bench/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // `x == null` is the one loose comparison kept: it means null or undefined.
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      // node:test's test() and describe() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] }] },
      ],
      // The code marks index reads it knows are in range with `!` (as noUncheckedIndexedAccess would require) and
      // names tensor ranks with `as tf.Tensor2D`; both document intent, and the rule would flag about 490 of them.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      // An async function without await is how an adapter or test double implements a Promise-returning
      // interface so that a throw becomes a rejection; dropping `async` would change that.
      '@typescript-eslint/require-await': 'off',
      // Shapes and index lists print as "2,3,4" in messages on purpose.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowArray: true }],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // Tests parse the JSON and JSONL the code under test writes and assert on its fields: a wrong
      // shape fails the assertion that reads it, so typing each parse would add nothing.
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // Tests match terminal colour codes (\x1b[…m) on purpose.
      'no-control-regex': 'off',
    },
  },
  {
    // Plain JavaScript (the bin shim and the tool configs) is outside tsconfig.json: lint it without type information.
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
);
