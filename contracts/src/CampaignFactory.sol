// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {Campaign} from "./Campaign.sol";

/// @title CampaignFactory
/// @notice Creates campaign escrows as EIP-1167 clones of one Campaign implementation, with the campaign's
///         parameters appended to the clone's code as immutable arguments (no storage writes, no initializer to
///         front-run). Addresses are deterministic: a creator can approve the budget to the address before
///         creating, and create and fund in one transaction. The factory has no owner and no settings.
contract CampaignFactory {
    struct CampaignParams {
        address token;
        address recordingOracle;
        address reputationOracle;
        address feeRecipient;
        uint64 start;
        uint64 end;
        uint64 epochLength;
        uint64 disputeWindow;
        uint128 budget;
        uint16 feeBps;
        bytes32 metadataHash;
    }

    uint256 public constant MAX_EPOCHS = 3660;
    uint16 public constant MAX_FEE_BPS = 1000;
    address public immutable implementation;

    event CampaignCreated(
        address indexed campaign,
        address indexed creator,
        address indexed token,
        bytes32 metadataHash,
        string metadataURI,
        CampaignParams params
    );

    error InvalidParams(string reason);

    constructor() {
        implementation = address(new Campaign());
    }

    function createCampaign(CampaignParams calldata p, string calldata metadataURI, bytes32 salt, bool fundNow)
        external
        returns (address campaign)
    {
        _validate(p);
        campaign = Clones.cloneDeterministicWithImmutableArgs(implementation, _args(p, msg.sender), _salt(msg.sender, salt));
        emit CampaignCreated(campaign, msg.sender, p.token, p.metadataHash, metadataURI, p);
        if (fundNow) Campaign(campaign).fund();
    }

    function predictCampaignAddress(CampaignParams calldata p, address creator, bytes32 salt)
        external
        view
        returns (address)
    {
        return Clones.predictDeterministicAddressWithImmutableArgs(implementation, _args(p, creator), _salt(creator, salt));
    }

    function _validate(CampaignParams calldata p) internal view {
        if (p.token == address(0)) revert InvalidParams("token is zero");
        if (p.recordingOracle == address(0) || p.reputationOracle == address(0)) revert InvalidParams("oracle is zero");
        if (p.start >= p.end) revert InvalidParams("start is not before end");
        if (p.end <= block.timestamp) revert InvalidParams("end is in the past");
        if (p.epochLength == 0) revert InvalidParams("epoch length is zero");
        if ((uint256(p.end) - p.start + p.epochLength - 1) / p.epochLength > MAX_EPOCHS) {
            revert InvalidParams("too many epochs");
        }
        if (p.budget == 0) revert InvalidParams("budget is zero");
        if (p.feeBps > MAX_FEE_BPS) revert InvalidParams("fee above 10%");
        if (p.feeBps != 0 && p.feeRecipient == address(0)) revert InvalidParams("fee recipient is zero");
        if (p.metadataHash == bytes32(0)) revert InvalidParams("metadata hash is zero");
    }

    function _args(CampaignParams calldata p, address creator) internal pure returns (bytes memory) {
        // Layout read back by Campaign.params(); keep the two in step.
        return abi.encodePacked(
            p.token,
            creator,
            p.recordingOracle,
            p.reputationOracle,
            p.feeRecipient,
            p.start,
            p.end,
            p.epochLength,
            p.disputeWindow,
            p.budget,
            p.feeBps,
            p.metadataHash
        );
    }

    function _salt(address creator, bytes32 salt) internal pure returns (bytes32) {
        return keccak256(abi.encode(creator, salt));
    }
}
