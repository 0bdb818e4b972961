"""GET /codes/search: ICD-10-CM, CPT and HCPCS codes by code prefix or words, billable first."""

from __future__ import annotations

from fastapi import APIRouter, Query

from services.coding.api.deps import CodeReader, State

router = APIRouter(tags=["code search"])


@router.get("/codes/search")
async def search(
    p: CodeReader,
    api: State,
    q: str = Query(min_length=1, max_length=64),
    system: str | None = Query(None, pattern="^(icd10cm|cpt|hcpcs)?$"),
    limit: int = Query(20, ge=1, le=100),
):
    """Each hit with code, label (CPT: rcm's own short label), billable and system. The first
    search of a process waits for the index to be built (about a second or two)."""
    index = await api.context.code_search()
    return [hit.as_json() for hit in index.search(q, system or None, limit)]
