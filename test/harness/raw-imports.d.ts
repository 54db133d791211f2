/** Vite's `?raw` suffix imports a file's text (vitest, both in Node and in the Workers pool). */
declare module '*?raw' {
  const text: string;
  export default text;
}
