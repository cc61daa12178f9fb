// Plain JavaScript on purpose: it must run on any Node to tell an old one what to do.
// npm scripts run on the Node 24 that `npm install` puts in node_modules/.bin (the `node`
// devDependency), whatever the machine's own node is; this catches a missing install.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  console.error(`care-relay needs Node.js 24 or later; this is ${process.version}.`);
  console.error('Run `npm install` first: it installs Node 24 into node_modules (the `node` package), and the npm scripts then run on it.');
  process.exit(1);
}
