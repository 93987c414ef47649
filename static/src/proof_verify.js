// Each executor's TDX quote verified again in the visitor's own browser, so that a visitor need not take the
// server's word for it (docs/proof-browser-verify.md). Bundled with @phala/dcap-qvl, dcap-qvl's JavaScript
// port, by `make deps` (static/dist/proof_verify.js, ADR 0020).
//
// The server verifies with the Python binding of dcap-qvl 0.7.0 (attestation/domain/quote.py). The JavaScript
// port 0.3.9 accepts some evidence that 0.7.0 refuses (found by reading it and by tests/browser/
// test_proof_verify.py): it never checks a CRL's signature or expiry, in a browser it never checks a
// certificate's validity dates (its browser X509Certificate has no validFrom/validTo, and a comparison with an
// invalid Date is always false), and it checks neither the QE vendor id nor the TDX module identity. Those checks
// are made here after the port accepted a quote, as 0.7.0 makes them: they can only refuse, never accept.
//
// Refusal reasons are attestation/domain/quote.py's stable codes, classified from the failure message with the
// same rules (plus the port's own wording of the same failures).

import { Buffer } from "buffer";
import { Quote, QuoteVerifier, constants, utils } from "@phala/dcap-qvl";

export const EVIDENCE_SCHEMA = "mrmarket.executor-evidence/v1";
const REPORT_DATA_TAG = "mrmarket.executor.attestation.v2\0"; // wire/attestation.py REPORT_DATA_TAG
const INTEL_QE_VENDOR_ID = "939a7233f79c4ca9940a0db3957f0607";
const ECDSA_WITH_SHA256 = "2a8648ce3d040302"; // OID 1.2.840.10045.4.3.2, DER content bytes
const HEADER_LEN = 48;
const TD_REPORT_LEN = 584;
const V5_TDX_BODY_TYPES = [2, 3, 4];

// --- failure reasons: attestation/domain/quote.py `_RULES`, first match wins ----------------------------------

const RULES = [
  ["debug_td", ["Debug mode is enabled"]],
  ["cert_revoked", ["CertRevoked", "Certificate is revoked"]],
  ["tcb_revoked", ["TCB status is invalid: Revoked"]],
  [
    "collateral_expired",
    [
      "TCBInfo expired",
      "QE Identity expired",
      "Collateral expired",
      "issue date is in the future",
      "CrlExpired",
      "CertExpired",
      "CertNotValidYet",
      "certificate expired",
      "certificate revocation list expired",
      "certificate not valid yet",
      "Certificate is expired or not yet valid", // the port, outside a browser
    ],
  ],
  [
    "no_matching_tcb",
    ["No matching TCB level", "No TDX module identity", "is below minimum required", "TCB level mismatch"],
  ],
  ["signature_invalid", ["ISV enclave report signature is invalid", "Signature is invalid for", "QE report hash mismatch"]],
  [
    "untrusted_root",
    [
      "InvalidCrlSignatureForPublicKey",
      "UnknownIssuer",
      "InvalidSignatureForPublicKey",
      "IssuerNotCrlSigner",
      "Failed to verify certificate chain - ", // the port's wording of a chain that does not lead to the root
    ],
  ],
  [
    "malformed_quote",
    [
      "Failed to decode quote",
      "Unsupported DCAP quote version",
      "TEE quote must have version",
      "Unsupported DCAP attestation key type",
      "Unknown QE vendor ID",
      "Unsupported TEE type",
      "Unsupported DCAP TEE type",
      "Unsupported cert type",
      "Unsupported certification data type",
      "Unsupported DCAP PCK cert format",
      "Failed to parse PCK certificate",
      "Failed to parse PCK extension",
      "Failed to extract PCK certificates from quote",
      "Certificate chain is too short in quote",
      "Empty PCK certificate chain",
      "Invalid QE auth data length",
      "Failed to decode QE report",
      "Intel extension not found",
      "Failed to get Intel extension",
      "Failed to find Fmspc",
      "Fmspc length mismatch",
      "Failed to find PceSvn",
      "PceSvn length mismatch",
      "Failed to get signed quote scope",
      "Failed to get TD10 report",
    ],
  ],
  [
    "bad_collateral",
    [
      "Failed to decode TcbInfo",
      "Failed to decode QeIdentity",
      "Failed to parse TCB Info",
      "Failed to parse QE Identity",
      "Failed to parse root CA CRL",
      "Failed to parse PCK CRL",
      "Failed to parse CRL",
      "Failed to decode hex-encoded",
      "Certificate chain is too short for",
      "Failed to extract PCK certificates from collateral",
      "TCB Info is missing",
      "with non-TDX TCB info",
      "with non-SGX TCB info",
      "Unsupported QE Identity",
      "No TCB levels found",
      "Failed to parse RFC3339",
      "Failed to decode TCB FMSPC",
      "Failed to decode Fmspc",
      "tcbDate",
    ],
  ],
];

export function classifyError(message) {
  for (const [reason, needles] of RULES) {
    if (needles.some((needle) => message.includes(needle))) return reason;
  }
  return "verification_failed";
}

function messageOf(error) {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return `${error.message}${cause}`;
}

class EvidenceError extends Error {}

// --- bytes -------------------------------------------------------------------------------------------------

const HEX = /^(?:[0-9a-fA-F]{2})*$/;

function fromHex(text, what, size) {
  if (typeof text !== "string" || !HEX.test(text)) throw new EvidenceError(`${what} is not hex`);
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  if (size !== undefined && out.length !== size) {
    throw new EvidenceError(`${what} must be ${size} bytes, got ${out.length}`);
  }
  return out;
}

function fromBase64(text, what) {
  if (typeof text !== "string") throw new EvidenceError(`${what} is not a string`);
  let binary;
  try {
    binary = atob(text);
  } catch {
    throw new EvidenceError(`${what} is not base64`);
  }
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function concatBytes(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function subtle() {
  if (!globalThis.crypto || !globalThis.crypto.subtle) {
    throw new EvidenceError("this page needs a secure context (https) for the browser's WebCrypto");
  }
  return globalThis.crypto.subtle;
}

// --- the TD report, read as attestation/domain/quote.py parse_quote_fields reads it ------------------------------

class QuoteError extends Error {}

function parseQuoteFields(raw) {
  if (raw.length < HEADER_LEN) throw new QuoteError(`quote too short: ${raw.length} bytes`);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const version = view.getUint16(0, true);
  const teeType = view.getUint32(4, true);
  if (version !== 4 && version !== 5) throw new QuoteError(`unsupported quote version ${version} (expected 4 or 5)`);
  if (teeType !== 0x81) throw new QuoteError(`TEE type 0x${teeType.toString(16)} is not TDX (0x81)`);
  let start = HEADER_LEN;
  if (version === 5) {
    if (raw.length < HEADER_LEN + 6) throw new QuoteError(`quote too short: ${raw.length} bytes`);
    const bodyType = view.getUint16(HEADER_LEN, true);
    const bodySize = view.getUint32(HEADER_LEN + 2, true);
    if (!V5_TDX_BODY_TYPES.includes(bodyType) || bodySize < TD_REPORT_LEN) {
      throw new QuoteError(`v5 body type ${bodyType} of ${bodySize} bytes is not a TD report`);
    }
    start = HEADER_LEN + 6;
  }
  if (raw.length < start + TD_REPORT_LEN) {
    throw new QuoteError(`quote too short: ${raw.length} bytes, the TD report ends at byte ${start + TD_REPORT_LEN}`);
  }
  const body = raw.subarray(start, start + TD_REPORT_LEN);
  return {
    mrtd: toHex(body.subarray(136, 184)),
    rtmrs: [0, 1, 2, 3].map((i) => toHex(body.subarray(328 + 48 * i, 376 + 48 * i))),
    report_data: toHex(body.subarray(520, 584)),
    teeTcbSvn: body.subarray(0, 16),
    mrSignerSeam: body.subarray(64, 112),
    seamAttributes: body.subarray(112, 120),
    qeVendorId: toHex(raw.subarray(12, 28)),
  };
}

// --- collateral: what dcap-qvl 0.7.0's QuoteCollateralV3.from_json reads ----------------------------------------

const TEXT_FIELDS = ["pck_crl_issuer_chain", "tcb_info_issuer_chain", "tcb_info", "qe_identity_issuer_chain", "qe_identity"];
const HEX_FIELDS = ["root_ca_crl", "pck_crl", "tcb_info_signature", "qe_identity_signature"];

// The port reads hex fields with Buffer.from(text, "hex"), which stops quietly at the first bad character; the
// binding refuses such a field, so the hex is decoded (strictly) here and handed over as bytes.
function parseCollateral(text) {
  let data;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new EvidenceError(`not JSON: ${error.message}`);
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) throw new EvidenceError("not a JSON object");
  const out = {};
  for (const name of TEXT_FIELDS) {
    if (typeof data[name] !== "string") throw new EvidenceError(`${name} is missing or not a string`);
    out[name] = data[name];
  }
  for (const name of HEX_FIELDS) out[name] = Buffer.from(fromHex(data[name], name));
  const chain = data.pck_certificate_chain;
  if (chain !== undefined && chain !== null) {
    if (typeof chain !== "string") throw new EvidenceError("pck_certificate_chain is not a string");
    out.pck_certificate_chain = chain;
  }
  return out;
}

// --- a little DER: certificates and CRLs, as far as the checks below read them ---------------------------------

function derAt(buf, pos) {
  if (pos + 2 > buf.length) throw new Error("BadDer");
  const tag = buf[pos];
  let len = buf[pos + 1];
  let start = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 3 || start + n > buf.length) throw new Error("BadDer");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i];
    start += n;
  }
  if (start + len > buf.length) throw new Error("BadDer");
  return { tag, pos, start, end: start + len };
}

function derChildren(buf, node) {
  const out = [];
  for (let at = node.start; at < node.end; ) {
    const child = derAt(buf, at);
    out.push(child);
    at = child.end;
  }
  return out;
}

const whole = (buf, node) => buf.subarray(node.pos, node.end);
const content = (buf, node) => buf.subarray(node.start, node.end);

function derTime(buf, node) {
  const text = new TextDecoder().decode(content(buf, node));
  // UTCTime YYMMDDhhmmssZ, GeneralizedTime YYYYMMDDhhmmssZ
  const shape = { 0x17: /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/, 0x18: /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/ };
  const match = shape[node.tag] && shape[node.tag].exec(text);
  if (!match) throw new Error("BadDerTime");
  let year = Number(match[1]);
  if (node.tag === 0x17) year += year >= 50 ? 1900 : 2000;
  const [month, day, hour, minute, second] = match.slice(2).map(Number);
  return Date.UTC(year, month - 1, day, hour, minute, second) / 1000;
}

function algorithmOid(buf, node) {
  const [oid] = derChildren(buf, node);
  return toHex(content(buf, oid));
}

function parseCertificate(der) {
  const buf = Uint8Array.from(der);
  const [tbs] = derChildren(buf, derAt(buf, 0));
  const fields = derChildren(buf, tbs);
  const at = fields[0].tag === 0xa0 ? 1 : 0; // explicit version
  const [, , issuer, validity, subject, spki] = fields.slice(at);
  const [notBefore, notAfter] = derChildren(buf, validity);
  return {
    der: buf,
    issuer: whole(buf, issuer),
    subject: whole(buf, subject),
    notBefore: derTime(buf, notBefore),
    notAfter: derTime(buf, notAfter),
    spki: whole(buf, spki),
  };
}

function parseCrl(der) {
  const buf = Uint8Array.from(der);
  const [tbs, sigAlg, signature] = derChildren(buf, derAt(buf, 0));
  const fields = derChildren(buf, tbs);
  const at = fields[0].tag === 0x02 ? 1 : 0; // optional version
  const [, issuer, , next] = fields.slice(at);
  const sig = content(buf, signature);
  return {
    tbs: whole(buf, tbs),
    issuer: whole(buf, issuer),
    nextUpdate: next && (next.tag === 0x17 || next.tag === 0x18) ? derTime(buf, next) : null,
    algorithm: algorithmOid(buf, sigAlg),
    signature: sig.subarray(1), // a BIT STRING: its first byte counts unused bits
  };
}

// An ECDSA signature in DER (SEQUENCE of two INTEGERs) as the 64-byte r‖s that WebCrypto verifies.
function rawSignature(der) {
  const seq = derAt(der, 0);
  const parts = derChildren(der, seq).map((n) => {
    let v = content(der, n);
    while (v.length > 32 && v[0] === 0) v = v.subarray(1);
    if (n.tag !== 0x02 || v.length > 32) throw new Error("BadDer");
    return concatBytes(new Uint8Array(32 - v.length), v);
  });
  if (parts.length !== 2) throw new Error("BadDer");
  return concatBytes(parts[0], parts[1]);
}

async function crlSignedBy(crl, issuer) {
  if (crl.algorithm !== ECDSA_WITH_SHA256) return false;
  try {
    const key = await subtle().importKey("spki", issuer.spki, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
    return await subtle().verify({ name: "ECDSA", hash: "SHA-256" }, key, rawSignature(crl.signature), crl.tbs);
  } catch (error) {
    if (error instanceof EvidenceError) throw error;
    return false;
  }
}

// --- the checks dcap-qvl 0.7.0 makes and the port does not (see the top of this file) --------------------------

// Revocation as webpki checks it for 0.7.0: the root CA CRL must be signed by the root and current; every
// certificate on a chain below the root must be within its validity dates and covered by a current CRL from its
// issuer, signed by that issuer. (Serial numbers on the CRLs the port already compares.)
async function checkCertificatesAndCrls(raw, collateral, rootDer, now) {
  const root = parseCertificate(rootDer);
  const crls = [collateral.root_ca_crl, collateral.pck_crl].map((der) => {
    try {
      return parseCrl(der);
    } catch {
      throw new Error("Failed to parse CRL");
    }
  });
  if (!(await crlSignedBy(crls[0], root))) throw new Error("Failed to parse root CA CRL: InvalidCrlSignatureForPublicKey");
  if (crls[0].nextUpdate !== null && now > crls[0].nextUpdate) throw new Error("CrlExpired (root CA CRL)");

  let pckPem;
  if (collateral.pck_certificate_chain) {
    pckPem = collateral.pck_certificate_chain;
  } else {
    pckPem = Quote.parse(Buffer.from(raw)).authData.intoV3().certificationData.body;
  }
  const chains = [collateral.tcb_info_issuer_chain, collateral.qe_identity_issuer_chain, pckPem];
  for (const pem of chains) {
    const path = utils
      .extractCerts(Buffer.from(pem))
      .filter((der) => !equalBytes(der, rootDer))
      .map(parseCertificate);
    for (let i = 0; i < path.length; i++) {
      const cert = path[i];
      const issuer = path[i + 1] || root;
      if (now < cert.notBefore) throw new Error(`Failed to verify certificate chain: CertNotValidYet (${cert.notBefore})`);
      if (now > cert.notAfter) throw new Error(`Failed to verify certificate chain: CertExpired (${cert.notAfter})`);
      const crl = crls.find((c) => equalBytes(c.issuer, cert.issuer));
      if (!crl) throw new Error("Failed to verify certificate chain: UnknownRevocationStatus");
      if (!(await crlSignedBy(crl, issuer))) {
        throw new Error("Failed to verify certificate chain: InvalidCrlSignatureForPublicKey");
      }
      if (crl.nextUpdate !== null && now > crl.nextUpdate) throw new Error("Failed to verify certificate chain: CrlExpired");
    }
  }
}

const SEVERITY = [
  "UpToDate",
  "SWHardeningNeeded",
  "ConfigurationNeeded",
  "ConfigurationAndSWHardeningNeeded",
  "OutOfDate",
  "OutOfDateConfigurationNeeded",
  "Revoked",
];

// Intel QVL's convergence of the platform status with a component's (here the TDX module's): only an OutOfDate
// or Revoked component changes it.
function converge(platform, component) {
  if (component === "Revoked") return "Revoked";
  if (component === "OutOfDate") {
    if (platform === "UpToDate" || platform === "SWHardeningNeeded") return "OutOfDate";
    if (platform === "ConfigurationNeeded" || platform === "ConfigurationAndSWHardeningNeeded") {
      return "OutOfDateConfigurationNeeded";
    }
  }
  return platform;
}

function hexField(value, what, size) {
  try {
    return fromHex(value, what, size);
  } catch (error) {
    throw new Error(`Failed to decode ${what} as hex: ${error.message}`);
  }
}

// The TDX module identity (0.7.0's match_tdx_module_identity): the module's signer and SEAM attributes as the
// TCB info expects them for this module version, and the module's own TCB level; null when there is none.
function checkTdxModule(fields, tcbInfoText) {
  const info = JSON.parse(tcbInfoText);
  if (info.id !== "TDX" || info.version < 3) return null;
  const base = info.tdxModule;
  if (!base) throw new Error("TDX TCB Info is missing tdxModule field");
  let signer = hexField(base.mrsigner, "tdxModule.mrsigner", 48);
  let attributes = hexField(base.attributes, "tdxModule.attributes", 8);
  let mask = hexField(base.attributesMask, "tdxModule.attributesMask", 8);
  const isvsvn = fields.teeTcbSvn[0];
  const version = fields.teeTcbSvn[1];
  const identities = info.tdxModuleIdentities || [];
  let levels = null;
  if (version > 0 && identities.length) {
    const wanted = `TDX_${version.toString(16).toUpperCase().padStart(2, "0")}`;
    const identity = identities.find((id) => String(id.id).toUpperCase() === wanted);
    if (!identity) throw new Error(`TDX module TCB level check: No TDX module identity with id ${wanted} found in TCB Info`);
    signer = hexField(identity.mrsigner, "tdxModuleIdentity.mrsigner", 48);
    attributes = hexField(identity.attributes, "tdxModuleIdentity.attributes", 8);
    mask = hexField(identity.attributesMask, "tdxModuleIdentity.attributesMask", 8);
    levels = identity.tcbLevels || [];
  }
  if (!equalBytes(fields.mrSignerSeam, signer)) {
    throw new Error(`TDX module MRSIGNER mismatch: expected ${toHex(signer)}, got ${toHex(fields.mrSignerSeam)}`);
  }
  for (let i = 0; i < 8; i++) {
    const actual = fields.seamAttributes[i];
    if ((attributes[i] & mask[i]) !== (actual & mask[i])) throw new Error(`TDX module SEAMATTRIBUTES mismatch at byte ${i}`);
    if (actual & ~mask[i] & 0xff) throw new Error(`TDX module SEAMATTRIBUTES has bits set outside mask at byte ${i}`);
  }
  if (levels === null) return null;
  const level = levels.find((l) => l && l.tcb && isvsvn >= l.tcb.isvsvn);
  if (!level) throw new Error(`TDX module ISVSVN ${isvsvn} is below minimum required from TDX module TCB levels`);
  if (!SEVERITY.includes(level.tcbStatus)) throw new Error(`TDX module tcbStatus ${level.tcbStatus} is unknown`);
  return { status: level.tcbStatus, advisoryIds: level.advisoryIDs || [] };
}

// --- REPORTDATA, as wire/attestation.py report_data computes it -----------------------------------------------

async function expectedReportData(body) {
  const { executor = {}, attestation = {} } = body;
  const parts = [
    new TextEncoder().encode(REPORT_DATA_TAG),
    fromHex(attestation.nonce, "nonce", 32),
    fromHex(executor.signing_key, "signing key", 32),
    fromHex(executor.sealing_key, "sealing key", 32),
    fromHex(attestation.runtime_config_digest, "runtime config digest", 32),
  ];
  return toHex(new Uint8Array(await subtle().digest("SHA-512", concatBytes(...parts))));
}

// --- the verdict ---------------------------------------------------------------------------------------------

function verdict(fields, extra) {
  return {
    ok: false,
    tcb_status: null,
    advisory_ids: [],
    mrtd: fields ? fields.mrtd : null,
    rtmrs: fields ? fields.rtmrs : [null, null, null, null],
    report_data: fields ? fields.report_data : null,
    report_data_bound: false,
    reason: null,
    detail: "",
    root: null,
    ...extra,
  };
}

const refused = (fields, reason, detail, root = null) => verdict(fields, { reason, detail, root });

/**
 * Verify an executor's evidence body (mrmarket.executor-evidence/v1) in this browser. Never rejects: any failure
 * is a verdict with ok false, a reason code (attestation/domain/quote.py's) and a detail for people.
 */
export async function verifyEvidence(body) {
  try {
    return await verifyBody(body);
  } catch (error) {
    return refused(null, "verification_failed", `the browser's verifier failed: ${messageOf(error)}`);
  }
}

async function verifyBody(body) {
  if (body === null || typeof body !== "object") return refused(null, "bad_evidence", "the evidence is not an object");
  const attestation = body.attestation || {};
  const root = body.root || {};
  const now = attestation.verified_at_unix;
  if (!Number.isSafeInteger(now) || now < 0) {
    return refused(null, "bad_evidence", "attestation.verified_at_unix is not a Unix time");
  }
  let rootDer;
  if (root.kind === "intel") {
    rootDer = constants.TRUSTED_ROOT_CA_DER;
  } else if (root.kind === "dev") {
    try {
      rootDer = Buffer.from(fromBase64(root.ca_der_b64, "root.ca_der_b64"));
    } catch (error) {
      return refused(null, "bad_evidence", error.message);
    }
    if (!rootDer.length) return refused(null, "bad_evidence", "a dev root needs root.ca_der_b64");
  } else {
    return refused(null, "bad_evidence", `unknown root kind ${JSON.stringify(root.kind)}`);
  }
  let raw;
  try {
    raw = fromBase64(body.quote_b64, "quote_b64");
  } catch (error) {
    return refused(null, "bad_evidence", error.message, root.kind);
  }
  let fields;
  try {
    fields = parseQuoteFields(raw);
  } catch (error) {
    if (error instanceof QuoteError) return refused(null, "malformed_quote", error.message, root.kind);
    throw error;
  }
  let collateral;
  try {
    if (typeof body.collateral !== "string") throw new EvidenceError("collateral is not a JSON text");
    collateral = parseCollateral(body.collateral);
  } catch (error) {
    return refused(fields, "bad_collateral", `collateral unreadable: ${error.message}`, root.kind);
  }

  const verifier = root.kind === "intel" ? QuoteVerifier.newProd() : QuoteVerifier.newWithRootCa(rootDer);
  let status;
  let advisoryIds;
  try {
    const report = verifier.verify(raw, collateral, now);
    await checkCertificatesAndCrls(raw, collateral, rootDer, now);
    if (fields.qeVendorId !== INTEL_QE_VENDOR_ID) throw new Error("Unknown QE vendor ID");
    const module = checkTdxModule(fields, collateral.tcb_info);
    status = String(report.status);
    advisoryIds = Array.from(report.advisory_ids || [], String);
    if (module) {
      status = converge(status, module.status);
      for (const id of module.advisoryIds) if (!advisoryIds.includes(String(id))) advisoryIds.push(String(id));
      if (status === "Revoked") throw new Error("TCB status is invalid: Revoked");
    }
  } catch (error) {
    if (error instanceof EvidenceError) throw error;
    const message = messageOf(error);
    return refused(fields, classifyError(message), message, root.kind);
  }

  let bound = false;
  let bindingDetail = "";
  try {
    bound = (await expectedReportData(body)) === fields.report_data;
    if (!bound) bindingDetail = "REPORTDATA is not SHA-512(tag, nonce, signing key, sealing key, runtime config digest)";
  } catch (error) {
    if (!(error instanceof EvidenceError) || error.message.includes("secure context")) throw error;
    bindingDetail = error.message;
  }
  return verdict(fields, {
    ok: true,
    tcb_status: status,
    advisory_ids: advisoryIds,
    report_data_bound: bound,
    detail: bound ? "verified" : bindingDetail,
    root: root.kind,
  });
}

// --- the evidence document and its digest --------------------------------------------------------------------

// RFC 8785 for the values evidence holds (strings, safe integers, booleans, null, arrays, objects): keys sorted by
// UTF-16 code units and strings escaped as JSON.stringify does, which is how RFC 8785 defines both.
export function canonicalJson(value) {
  if (value === null || typeof value === "boolean" || typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new EvidenceError("the evidence holds a number that is not a safe integer");
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
  }
  throw new EvidenceError(`the evidence holds a ${typeof value}`);
}

async function sha256Hex(text) {
  return toHex(new Uint8Array(await subtle().digest("SHA-256", new TextEncoder().encode(text))));
}

/** Check an evidence document's schema and digest, then verify its body. Never rejects. */
export async function verifyDocument(doc) {
  try {
    if (doc === null || typeof doc !== "object" || doc.schema !== EVIDENCE_SCHEMA) {
      return refused(null, "bad_evidence", `not a ${EVIDENCE_SCHEMA} document`);
    }
    if ((await sha256Hex(canonicalJson(doc.body))) !== String(doc.digest).toLowerCase()) {
      return refused(null, "bad_evidence", "the evidence's digest does not match its body");
    }
  } catch (error) {
    return refused(null, "bad_evidence", messageOf(error));
  }
  return verifyEvidence(doc.body);
}

// --- the page ------------------------------------------------------------------------------------------------

const norm = (value) => (value === null || value === undefined ? "" : String(value).toLowerCase());

/** The fields on which the browser's and the server's verdicts differ ([] when they agree). */
export function disagreements(browser, server) {
  if (!server || typeof server !== "object") return ["the server gave no verdict"];
  const pairs = [
    ["ok", String(browser.ok), String(server.ok === true)],
    ["TCB status", norm(browser.tcb_status), norm(server.tcb_status)],
    ["MRTD", norm(browser.mrtd), norm(server.mrtd)],
    ...[0, 1, 2, 3].map((i) => [`RTMR${i}`, norm(browser.rtmrs[i]), norm(server[`rtmr${i}`])]),
  ];
  return pairs.filter(([, a, b]) => a !== b).map(([name]) => name);
}

function verdictText(result) {
  if (!result.ok) {
    const detail = result.detail ? ` (${result.detail})` : "";
    return `Refused in your browser: ${result.reason}${detail}`;
  }
  const parts = [`Verified in your browser: ${result.tcb_status}`, `MRTD ${result.mrtd.slice(0, 8)}…`];
  parts.push(
    result.report_data_bound
      ? "REPORTDATA binds this executor's keys and runtime configuration"
      : `REPORTDATA does not bind this executor's keys: ${result.detail}`,
  );
  if (result.root === "dev") parts.push("signed under the dev root, not by Intel hardware");
  return parts.join(" · ");
}

function show(target, { ok, tcbStatus, agrees, bound, reason, lines }) {
  target.dataset.ok = String(ok);
  target.dataset.tcbStatus = tcbStatus || "";
  target.dataset.agrees = String(agrees);
  target.dataset.reportDataBound = String(bound);
  target.dataset.reason = reason || "";
  const nodes = [];
  lines.forEach(([name, text], i) => {
    if (i) nodes.push(document.createElement("br"));
    const span = document.createElement("span");
    span.dataset[name] = "";
    span.textContent = text;
    nodes.push(span);
  });
  target.replaceChildren(...nodes);
}

async function verifyElement(element) {
  const target = element.querySelector("[data-browser-verdict]");
  if (!target) return;
  target.textContent = "Verifying in your browser…";
  let doc;
  try {
    const response = await fetch(element.dataset.evidenceUrl, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (!response.ok) throw new Error(`the server answered ${response.status}`);
    doc = await response.json();
  } catch (error) {
    show(target, {
      ok: false,
      agrees: false,
      bound: false,
      reason: "fetch_failed",
      lines: [
        ["verdictLine", `Could not verify in your browser: the evidence could not be loaded (${messageOf(error)}).`],
        ["agreementLine", "Nothing to compare with the server's verdict."],
      ],
    });
    return;
  }
  const result = await verifyDocument(doc);
  const server = doc && doc.body ? doc.body.server_verdict : null;
  const differs = disagreements(result, server);
  show(target, {
    ok: result.ok,
    tcbStatus: result.tcb_status,
    agrees: differs.length === 0,
    bound: result.report_data_bound,
    reason: result.reason,
    lines: [
      ["verdictLine", verdictText(result)],
      [
        "agreementLine",
        differs.length === 0
          ? "The server's verdict agrees with your browser's."
          : `The server's verdict differs from your browser's: ${differs.join(", ")}.`,
      ],
    ],
  });
}

async function verifyPage() {
  for (const element of document.querySelectorAll("[data-evidence-url]")) {
    await new Promise((resolve) => setTimeout(resolve, 0)); // let the page paint between quotes
    try {
      await verifyElement(element);
    } catch (error) {
      const target = element.querySelector("[data-browser-verdict]");
      if (target) {
        show(target, {
          ok: false,
          agrees: false,
          bound: false,
          reason: "verification_failed",
          lines: [
            ["verdictLine", `Could not verify in your browser: ${messageOf(error)}`],
            ["agreementLine", "Nothing to compare with the server's verdict."],
          ],
        });
      }
    }
  }
}

if (typeof document !== "undefined") {
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", verifyPage, { once: true });
  else verifyPage();
}
