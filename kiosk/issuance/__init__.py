"""issuance"""
