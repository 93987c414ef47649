// @phala/dcap-qvl alone, on the code path it takes in a browser (it decides by `typeof window`), without the
// checks static/src/proof_verify.js adds: pins which evidence the port by itself accepts.
// stdin: [{quote_b64, collateral (JSON text), now, root_der_b64 ("" for Intel's)}, ...];
// stdout: [{ok, status, advisory_ids, error}, ...].
globalThis.window = {};
const { QuoteVerifier } = require("@phala/dcap-qvl");
const { Buffer } = require("buffer");

let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  const out = JSON.parse(input).map((c) => {
    const verifier = c.root_der_b64
      ? QuoteVerifier.newWithRootCa(Buffer.from(c.root_der_b64, "base64"))
      : QuoteVerifier.newProd();
    try {
      const report = verifier.verify(Buffer.from(c.quote_b64, "base64"), JSON.parse(c.collateral), c.now);
      return { ok: true, status: report.status, advisory_ids: report.advisory_ids, error: null };
    } catch (error) {
      return { ok: false, status: null, advisory_ids: [], error: error.message };
    }
  });
  process.stdout.write(JSON.stringify(out));
});
