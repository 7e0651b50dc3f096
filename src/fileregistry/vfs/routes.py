"""HTTP routes (vfs). Thin: parse, call one service function, return."""

from fastapi import APIRouter

router = APIRouter()
