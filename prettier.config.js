// The code base was written to a wide line (before this config, about 540 lines were over 140
// characters and nearly 1,000 over 120): at 140 prettier leaves most existing lines alone and breaks
// only the long ones, instead of rewrapping every signature and call as a narrower width would.
/** @type {import('prettier').Config} */
export default {
  printWidth: 140,
  singleQuote: true,
};
