throw new Error('msgpackr-extract is disabled in this project (see its package.json)');
