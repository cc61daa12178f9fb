// Plain JavaScript on purpose: it must run on any Node to tell an old one what to do.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  console.error(`care-relay needs Node.js 24 or later; this is ${process.version}.`);
  console.error('Run `source scripts/node24.sh` (installs Node 24 into .tools/ from the npm registry) and try again.');
  process.exit(1);
}
